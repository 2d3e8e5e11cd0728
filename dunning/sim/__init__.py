"""`dunning simulate`: a portfolio through policies or a strategy on a simulated clock.

The simulator folds the production `workflows.decide.decide` and
`workflows.evolve.evolve` (and so the compliance guard) exactly as the workflow does;
only the outside world is simulated: providers answer as a borrower-response model
says, and the borrower's payments, promises and disputes enter through the same
`workflows.actions` rules as an operator's or a backend's, refusals included.
"""
