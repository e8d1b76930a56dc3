"""Reports of suite runs and comparisons: terminal (rich), Markdown, JSON and one HTML file.

Every format renders the same ``summary.RunSummary``, computed once per report.
"""
