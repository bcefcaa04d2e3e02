"""JupyterLab in Debian's Chromium, driven by Playwright: what a student and an instructor see."""
