"""`python -m grocery review`: people label the model's unsure predictions (issue 13)."""
