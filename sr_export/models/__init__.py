"""The model zoo and bring-your-own model loading."""
