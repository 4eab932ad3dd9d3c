"""Reports for managers: rollouts, rollbacks, delivery metrics and versions over a time range.

Nothing is imported here: the command line's parser reads `cli_args` without loading pandas.
"""
