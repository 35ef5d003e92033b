"""``python -m phantomex.devtools.llm_sim``: run the simulator in the foreground."""

from phantomex.devtools.llm_sim.server import main

main()
