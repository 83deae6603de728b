"""Browser tests' helpers: Mirador 3 and 4 from npm in Debian's headless chromium (see setup.sh)."""
