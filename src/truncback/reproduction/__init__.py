"""The reproduction report: the paper's numbers and claims against ours, each with a verdict (PASS,
FAIL, NOT RUN), computed from the raw results only."""
