"""The open choices and the meta-training data, measured (issue 35): how much each choice the paper
leaves open moves Tables 2 and 4 and claim C4, and how Table 4 moves with the meta-training characters.
Every run is an ordinary ``hypercleaning`` or ``omniglot`` run; this package names them (settings),
makes the data-scaling pools (pools), estimates their time (estimate) and sums them up (summary,
table, figure)."""
