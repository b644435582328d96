"""The few Caffe protobuf messages sr-export reads, declared at runtime.

Caffe files are protobuf (``.caffemodel`` binary, ``.prototxt`` text) of
``caffe.NetParameter``. Rather than ship a generated ``caffe_pb2``, the
messages are declared here with only the fields sr-export uses; the field
numbers are those of Caffe's public ``src/caffe/proto/caffe.proto``. Fields
not declared are skipped by the binary parser, and the text parser is told to
allow unknown fields (fillers, ``lr_mult``...), so any Caffe file reads.
Both the current ``layer`` (LayerParameter) and the deprecated V1 ``layers``
(V1LayerParameter) are declared, as old models use the latter.
"""

from __future__ import annotations

import functools
from typing import Any

PACKAGE = "srexport_caffe"  # not "caffe": stays out of the way of a real caffe_pb2 in the same process

# (name, number, type, label, message type or None, packed)
_OPTIONAL, _REPEATED = "optional", "repeated"
_MESSAGES: dict[str, list[tuple[str, int, str, str, str | None, bool]]] = {
    "BlobShape": [("dim", 1, "int64", _REPEATED, None, True)],
    "BlobProto": [
        ("num", 1, "int32", _OPTIONAL, None, False),
        ("channels", 2, "int32", _OPTIONAL, None, False),
        ("height", 3, "int32", _OPTIONAL, None, False),
        ("width", 4, "int32", _OPTIONAL, None, False),
        ("data", 5, "float", _REPEATED, None, True),
        ("shape", 7, "message", _OPTIONAL, "BlobShape", False),
        ("double_data", 8, "double", _REPEATED, None, True),
    ],
    "ConvolutionParameter": [
        ("num_output", 1, "uint32", _OPTIONAL, None, False),
        ("bias_term", 2, "bool", _OPTIONAL, None, False),
        ("pad", 3, "uint32", _REPEATED, None, False),
        ("kernel_size", 4, "uint32", _REPEATED, None, False),
        ("group", 5, "uint32", _OPTIONAL, None, False),
        ("stride", 6, "uint32", _REPEATED, None, False),
        ("pad_h", 9, "uint32", _OPTIONAL, None, False),
        ("pad_w", 10, "uint32", _OPTIONAL, None, False),
        ("kernel_h", 11, "uint32", _OPTIONAL, None, False),
        ("kernel_w", 12, "uint32", _OPTIONAL, None, False),
        ("stride_h", 13, "uint32", _OPTIONAL, None, False),
        ("stride_w", 14, "uint32", _OPTIONAL, None, False),
        ("dilation", 18, "uint32", _REPEATED, None, False),
    ],
    "ReLUParameter": [("negative_slope", 1, "float", _OPTIONAL, None, False)],
    "SliceParameter": [
        ("slice_dim", 1, "uint32", _OPTIONAL, None, False),
        ("slice_point", 2, "uint32", _REPEATED, None, False),
        ("axis", 3, "int32", _OPTIONAL, None, False),
    ],
    "ConcatParameter": [
        ("concat_dim", 1, "uint32", _OPTIONAL, None, False),
        ("axis", 2, "int32", _OPTIONAL, None, False),
    ],
    "EltwiseParameter": [
        ("operation", 1, "enum", _OPTIONAL, "EltwiseParameter.EltwiseOp", False),
        ("coeff", 2, "float", _REPEATED, None, False),
    ],
    "LayerParameter": [
        ("name", 1, "string", _OPTIONAL, None, False),
        ("type", 2, "string", _OPTIONAL, None, False),
        ("bottom", 3, "string", _REPEATED, None, False),
        ("top", 4, "string", _REPEATED, None, False),
        ("blobs", 7, "message", _REPEATED, "BlobProto", False),
        ("concat_param", 104, "message", _OPTIONAL, "ConcatParameter", False),
        ("convolution_param", 106, "message", _OPTIONAL, "ConvolutionParameter", False),
        ("eltwise_param", 110, "message", _OPTIONAL, "EltwiseParameter", False),
        ("relu_param", 123, "message", _OPTIONAL, "ReLUParameter", False),
        ("slice_param", 126, "message", _OPTIONAL, "SliceParameter", False),
    ],
    "V1LayerParameter": [
        ("bottom", 2, "string", _REPEATED, None, False),
        ("top", 3, "string", _REPEATED, None, False),
        ("name", 4, "string", _OPTIONAL, None, False),
        ("type", 5, "enum", _OPTIONAL, "V1LayerParameter.LayerType", False),
        ("blobs", 6, "message", _REPEATED, "BlobProto", False),
        ("concat_param", 9, "message", _OPTIONAL, "ConcatParameter", False),
        ("convolution_param", 10, "message", _OPTIONAL, "ConvolutionParameter", False),
        ("eltwise_param", 24, "message", _OPTIONAL, "EltwiseParameter", False),
        ("relu_param", 30, "message", _OPTIONAL, "ReLUParameter", False),
        ("slice_param", 31, "message", _OPTIONAL, "SliceParameter", False),
    ],
    "NetParameter": [
        ("name", 1, "string", _OPTIONAL, None, False),
        ("layers", 2, "message", _REPEATED, "V1LayerParameter", False),
        ("input", 3, "string", _REPEATED, None, False),
        ("input_dim", 4, "int32", _REPEATED, None, False),
        ("input_shape", 8, "message", _REPEATED, "BlobShape", False),
        ("layer", 100, "message", _REPEATED, "LayerParameter", False),
    ],
}

# Enums nested in a message: (message, enum) -> values. V1 layer types are
# declared for the layers sr-export understands (with their V2 names in V1_TYPES).
_ENUMS: dict[tuple[str, str], dict[str, int]] = {
    ("EltwiseParameter", "EltwiseOp"): {"PROD": 0, "SUM": 1, "MAX": 2},
    ("V1LayerParameter", "LayerType"): {
        "NONE": 0, "CONCAT": 3, "CONVOLUTION": 4, "DECONVOLUTION": 39, "ELTWISE": 25,
        "RELU": 18, "SLICE": 33, "SPLIT": 22,
    },
}
V1_TYPES = {"CONCAT": "Concat", "CONVOLUTION": "Convolution", "DECONVOLUTION": "Deconvolution",
            "ELTWISE": "Eltwise", "RELU": "ReLU", "SLICE": "Slice", "SPLIT": "Split", "NONE": "None"}


@functools.cache
def message_classes() -> dict[str, type]:
    """The message classes by name, built once per process from the table above."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(name=f"{PACKAGE}.proto", package=PACKAGE, syntax="proto2")
    types = descriptor_pb2.FieldDescriptorProto
    for name, fields in _MESSAGES.items():
        message = proto.message_type.add(name=name)
        for (owner, enum_name), values in _ENUMS.items():
            if owner == name:
                enum = message.enum_type.add(name=enum_name)
                for value_name, number in values.items():
                    enum.value.add(name=value_name, number=number)
        for field_name, number, kind, label, type_name, packed in fields:
            field = message.field.add(name=field_name, number=number)
            field.label = types.LABEL_REPEATED if label == _REPEATED else types.LABEL_OPTIONAL
            field.type = getattr(types, f"TYPE_{kind.upper()}")
            if type_name:
                field.type_name = f".{PACKAGE}.{type_name}"
            if packed:
                field.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(proto.SerializeToString())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
            for name in _MESSAGES}


def new_net() -> Any:
    return message_classes()["NetParameter"]()
