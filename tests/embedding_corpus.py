"""A tiny corpus with a planted pattern, shared by the embedding tests.

Animals and vehicles each occur in their own contexts, so every good embedding puts each animal's
nearest neighbours among the other animals and each vehicle's among the other vehicles.
"""

import random

ANIMALS = ["cat", "dog", "horse", "cow"]
VEHICLES = ["car", "bus", "truck", "van"]


def planted_corpus(lines: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    corpus = []
    for _ in range(lines):
        if rng.random() < 0.5:
            corpus.append(f"the {rng.choice(ANIMALS)} eats {rng.choice(['grass', 'hay'])} in the field")
        else:
            corpus.append(f"the {rng.choice(VEHICLES)} drives on the {rng.choice(['wide', 'busy'])} road")
    return corpus


def group_of(word: str) -> list[str]:
    return ANIMALS if word in ANIMALS else VEHICLES
