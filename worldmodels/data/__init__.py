"""Data: the CarRacing environment, episode files, and the sampling entry scripts."""
