"""The pull-request review: the promotion gate and one Markdown report against the base branch.

Reads only what the stages wrote (JSON, TSV, Markdown) and git; imports no training code.
"""
