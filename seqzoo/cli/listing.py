"""`seqzoo list`: the presets of the zoo with their main hyperparameters."""

from seqzoo.models.registry import list_models, summarize


def run(args):
    models = list_models()
    width = max(len(m["name"]) for m in models)
    for m in models:
        print(f"{m['name']:<{width}}  {m['description']}")
        print(f"{'':<{width}}  {m['class']}: {summarize(m['config'])}")
    return 0


def add_parser(commands):
    return commands.add_parser("list", help="list the model presets of the zoo")
