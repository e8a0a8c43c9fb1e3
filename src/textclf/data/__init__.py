"""Data: loading, validation, splitting, and the text preprocessing shared with serving."""
