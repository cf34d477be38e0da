"""The `trlgate` command line: run the stack, migrate, seed, manage users, check the fund."""
