"""Gate criteria, scorecards and decision rules: pure code, safe inside the workflow sandbox."""
