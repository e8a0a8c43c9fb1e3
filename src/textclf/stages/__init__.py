"""Pipeline stages: each module has ``run(params, paths)``; ``textclf <stage>`` calls it."""
