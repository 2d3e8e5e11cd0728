"""The outside world behind small interfaces: SMS gateway, dialer, field agency, legal partner."""
