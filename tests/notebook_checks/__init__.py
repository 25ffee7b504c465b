"""What each tutorial must show beyond running clean: tests/notebook_checks/<notebook stem>.py
defines `check(nb, workdir)`, called by tests/test_notebooks.py after the notebook ran."""
