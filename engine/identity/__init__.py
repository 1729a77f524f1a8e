"""Master patient index: one person across member hospitals, linked by the national resident ID."""
