"""Things to do with a trained model: compress, explain, probe, time, cost, and export as a script."""
