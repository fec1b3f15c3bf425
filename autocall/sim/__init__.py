"""The simulator: run a dialogue with a scripted or keyboard caller, no PBX needed."""
