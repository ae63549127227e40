"""lapse's tests."""
