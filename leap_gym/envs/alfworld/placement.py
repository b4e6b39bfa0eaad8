"""Where objects tend to be: receptacle-class preferences for placing objects in generated games.

ALFWorld's objects are not spread uniformly over the receptacles that can hold them: in the released games a
book lies on a bed 40% of the time, a pan on a stove burner 55%, an apple in the fridge or on the countertop
half of the time (see ``count_placements`` on ``json_2.1.1/valid_train``). A generator that drew holders
uniformly would remove exactly what a student can learn from a privileged teacher and a common-sense searcher
cannot know, so generated games draw each object's holder with these preferences.

``PLACEMENT_COUNTS`` holds aggregate counts (object class -> receptacle class -> number of object instances),
computed with ``count_placements`` from ALFWorld's ``valid_train`` games (200 games, seen scenes; no test
game), and ``RECEPTACLE_INSTANCES`` the mean number of instances of each receptacle class per game.
``holder_weight`` turns them into a per-instance weight with add-one smoothing, so every legal holder stays
possible.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from leap_gym.envs.alfworld.tasks import _read_json

_TYPE = re.compile(r"\((objectType|receptacleType) (\S+) (\w+)Type\)")
_IN = re.compile(r"\(inReceptacle (\S+) (\S+)\)")


def count_placements(data_dir: str | Path) -> tuple[dict[str, dict[str, int]], dict[str, float]]:
    """``(counts, mean instances per game)`` over every ``game.tw-pddl`` under ``data_dir``."""
    counts: dict[str, Counter] = defaultdict(Counter)
    instances: dict[str, list[int]] = defaultdict(list)
    for path in sorted(Path(data_dir).rglob("game.tw-pddl")):
        problem = _read_json(path).get("pddl_problem")
        if not isinstance(problem, str):
            raise ValueError(f"corrupt ALFWorld game {path}: missing 'pddl_problem'")
        types = _TYPE.findall(problem)
        kind = {name: klass for _, name, klass in types}
        for obj, recep in set(_IN.findall(problem)):
            if obj in kind and recep in kind:
                counts[kind[obj]][kind[recep]] += 1
        per_game = Counter(klass for tag, _, klass in types if tag == "receptacleType")
        for klass, n in per_game.items():
            instances[klass].append(n)
    return ({o: dict(sorted(c.items())) for o, c in sorted(counts.items())},
            {k: round(sum(v) / len(v), 2) for k, v in sorted(instances.items())})


# Generated from ALFWorld's released games: python -m leap_gym.envs.alfworld.placement
# $ALFWORLD_DATA/json_2.1.1/valid_train
PLACEMENT_COUNTS: dict[str, dict[str, int]] = {
    'AlarmClock': {'Desk': 26, 'DiningTable': 6, 'Dresser': 16, 'Shelf': 16, 'SideTable': 20},
    'Apple': {
        'CounterTop': 43, 'DiningTable': 24, 'Fridge': 46, 'GarbageCan': 25, 'Microwave': 25, 'SideTable': 3,
        'SinkBasin': 13,
    },
    'Bathtub': {'BathtubBasin': 1},
    'Book': {
        'Bed': 43, 'Cabinet': 10, 'CoffeeTable': 1, 'CounterTop': 8, 'Desk': 19, 'DiningTable': 6,
        'Drawer': 9, 'Dresser': 8, 'Shelf': 1, 'SideTable': 4, 'Sofa': 4, 'TVStand': 1,
    },
    'Bowl': {
        'Cabinet': 64, 'CounterTop': 32, 'Desk': 20, 'DiningTable': 24, 'Dresser': 3, 'Fridge': 36,
        'Microwave': 6, 'Shelf': 11, 'SideTable': 4, 'SinkBasin': 7, 'TVStand': 2,
    },
    'Box': {
        'ArmChair': 1, 'CoffeeTable': 11, 'DiningTable': 13, 'Dresser': 5, 'Shelf': 2, 'SideTable': 3,
        'Sofa': 9, 'TVStand': 1,
    },
    'Bread': {'CounterTop': 67, 'DiningTable': 39, 'Fridge': 27, 'Microwave': 1, 'SideTable': 1},
    'ButterKnife': {'CounterTop': 88, 'DiningTable': 53, 'Drawer': 14, 'SideTable': 1, 'SinkBasin': 7},
    'CD': {
        'ArmChair': 2, 'Cabinet': 2, 'Desk': 14, 'DiningTable': 3, 'Drawer': 25, 'Dresser': 14,
        'GarbageCan': 6, 'Safe': 1, 'Shelf': 9, 'SideTable': 13,
    },
    'Candle': {
        'Cabinet': 12, 'Cart': 2, 'CoffeeTable': 3, 'CounterTop': 19, 'DiningTable': 4, 'Drawer': 4,
        'Dresser': 3, 'Shelf': 8, 'SideTable': 7, 'Toilet': 25,
    },
    'CellPhone': {
        'ArmChair': 7, 'Bed': 30, 'CoffeeTable': 1, 'CounterTop': 7, 'Desk': 19, 'DiningTable': 3,
        'Drawer': 29, 'Dresser': 14, 'Safe': 2, 'Shelf': 7, 'SideTable': 7, 'Sofa': 3,
    },
    'Cloth': {
        'BathtubBasin': 13, 'Cabinet': 19, 'Cart': 2, 'CounterTop': 9, 'Drawer': 13, 'Shelf': 3,
        'SinkBasin': 9, 'Toilet': 4,
    },
    'CreditCard': {
        'ArmChair': 11, 'CoffeeTable': 16, 'CounterTop': 7, 'Desk': 13, 'DiningTable': 7, 'Drawer': 35,
        'Dresser': 14, 'Ottoman': 3, 'Safe': 2, 'Shelf': 18, 'SideTable': 23, 'Sofa': 11, 'TVStand': 5,
    },
    'Cup': {
        'Cabinet': 39, 'CounterTop': 33, 'DiningTable': 19, 'Fridge': 37, 'Microwave': 14, 'Shelf': 11,
        'SideTable': 1, 'SinkBasin': 13,
    },
    'DeskLamp': {'CoffeeTable': 1, 'Desk': 14, 'Dresser': 9, 'Shelf': 1, 'SideTable': 19},
    'DishSponge': {
        'BathtubBasin': 3, 'Cabinet': 50, 'Cart': 1, 'CounterTop': 51, 'DiningTable': 30, 'Drawer': 23,
        'GarbageCan': 7, 'Shelf': 7, 'SinkBasin': 9, 'Toilet': 3,
    },
    'Egg': {
        'CounterTop': 32, 'DiningTable': 14, 'Fridge': 42, 'GarbageCan': 28, 'Microwave': 23,
        'SinkBasin': 26,
    },
    'FloorLamp': {'SinkBasin': 6},
    'Fork': {'CounterTop': 85, 'DiningTable': 45, 'Drawer': 33, 'SideTable': 3, 'SinkBasin': 15},
    'Glassbottle': {
        'Cabinet': 14, 'CounterTop': 15, 'DiningTable': 11, 'Fridge': 4, 'GarbageCan': 1, 'Shelf': 2,
        'SinkBasin': 5,
    },
    'HandTowel': {'Cabinet': 1, 'CounterTop': 6, 'HandTowelHolder': 44},
    'HousePlant': {
        'Cabinet': 5, 'CoffeeTable': 8, 'CounterTop': 24, 'Desk': 8, 'DiningTable': 7, 'Dresser': 1,
        'Shelf': 7, 'SideTable': 11, 'TVStand': 2,
    },
    'Kettle': {
        'Cabinet': 21, 'CounterTop': 30, 'DiningTable': 5, 'Shelf': 1, 'SinkBasin': 2, 'StoveBurner': 29,
    },
    'KeyChain': {
        'ArmChair': 16, 'Cabinet': 3, 'CoffeeTable': 6, 'Desk': 14, 'DiningTable': 12, 'Drawer': 27,
        'Dresser': 17, 'Ottoman': 2, 'Safe': 7, 'Shelf': 11, 'SideTable': 18, 'Sofa': 10, 'TVStand': 3,
    },
    'Knife': {'CounterTop': 96, 'DiningTable': 44, 'Drawer': 22, 'SinkBasin': 4},
    'Ladle': {'Cabinet': 10, 'CounterTop': 31, 'DiningTable': 9, 'Drawer': 17, 'SinkBasin': 1},
    'Laptop': {
        'ArmChair': 5, 'Bed': 57, 'CoffeeTable': 4, 'Desk': 12, 'DiningTable': 15, 'Dresser': 4,
        'SideTable': 6, 'Sofa': 10, 'TVStand': 5,
    },
    'Lettuce': {
        'CounterTop': 61, 'DiningTable': 54, 'Fridge': 38, 'GarbageCan': 1, 'SideTable': 1, 'SinkBasin': 5,
    },
    'Mirror': {'CounterTop': 1, 'Dresser': 1},
    'Mug': {
        'Cabinet': 31, 'CoffeeMachine': 35, 'CounterTop': 52, 'Desk': 11, 'DiningTable': 24, 'Dresser': 6,
        'Fridge': 28, 'Microwave': 12, 'Shelf': 8, 'SideTable': 13, 'SinkBasin': 16,
    },
    'Newspaper': {
        'ArmChair': 5, 'CoffeeTable': 6, 'DiningTable': 5, 'Drawer': 2, 'Ottoman': 1, 'Shelf': 4,
        'SideTable': 1, 'Sofa': 11,
    },
    'Pan': {'Cabinet': 11, 'CounterTop': 46, 'DiningTable': 12, 'Fridge': 5, 'StoveBurner': 83},
    'PaperTowelRoll': {'CounterTop': 16, 'DiningTable': 6, 'GarbageCan': 7, 'Shelf': 5, 'SideTable': 1},
    'Pen': {
        'CoffeeTable': 1, 'CounterTop': 5, 'Desk': 24, 'DiningTable': 10, 'Drawer': 12, 'Dresser': 17,
        'GarbageCan': 2, 'Shelf': 7, 'SideTable': 14,
    },
    'Pencil': {
        'CoffeeTable': 2, 'CounterTop': 8, 'Desk': 18, 'DiningTable': 9, 'Drawer': 29, 'Dresser': 9,
        'GarbageCan': 5, 'Shelf': 12, 'SideTable': 22,
    },
    'PepperShaker': {
        'Cabinet': 64, 'CounterTop': 48, 'DiningTable': 24, 'Drawer': 28, 'Shelf': 9, 'SideTable': 5,
    },
    'Pillow': {'ArmChair': 7, 'Bed': 71, 'Ottoman': 3, 'Sofa': 30},
    'Plate': {
        'Cabinet': 66, 'CoffeeTable': 2, 'CounterTop': 46, 'DiningTable': 36, 'Fridge': 14, 'Microwave': 6,
        'Shelf': 7, 'SideTable': 1, 'SinkBasin': 2,
    },
    'Pot': {'Cabinet': 2, 'CounterTop': 18, 'DiningTable': 10, 'Fridge': 9, 'StoveBurner': 124},
    'Potato': {
        'CounterTop': 57, 'DiningTable': 29, 'Fridge': 43, 'GarbageCan': 11, 'Microwave': 22, 'SideTable': 5,
        'SinkBasin': 19,
    },
    'RemoteControl': {
        'ArmChair': 13, 'CoffeeTable': 14, 'Desk': 4, 'DiningTable': 3, 'Drawer': 9, 'Dresser': 5,
        'Ottoman': 4, 'Shelf': 4, 'SideTable': 6, 'Sofa': 17, 'TVStand': 8,
    },
    'SaltShaker': {
        'Cabinet': 55, 'CounterTop': 39, 'DiningTable': 39, 'Drawer': 27, 'Shelf': 9, 'SideTable': 4,
    },
    'ShowerGlass': {'CounterTop': 1, 'Shelf': 1},
    'Sink': {'CounterTop': 15, 'SinkBasin': 5},
    'SoapBar': {
        'BathtubBasin': 2, 'Cabinet': 9, 'Cart': 2, 'CounterTop': 22, 'Drawer': 7, 'GarbageCan': 6,
        'Shelf': 4, 'SideTable': 1, 'SinkBasin': 13, 'Toilet': 14,
    },
    'SoapBottle': {
        'Cabinet': 68, 'Cart': 4, 'CounterTop': 79, 'DiningTable': 35, 'Drawer': 1, 'GarbageCan': 28,
        'Shelf': 12, 'SideTable': 7, 'Toilet': 25,
    },
    'Spatula': {'CounterTop': 80, 'DiningTable': 50, 'Drawer': 38, 'SideTable': 1, 'SinkBasin': 8},
    'Spoon': {'CounterTop': 59, 'DiningTable': 40, 'Drawer': 48, 'SideTable': 3, 'SinkBasin': 26},
    'SprayBottle': {
        'Cabinet': 15, 'Cart': 4, 'CounterTop': 32, 'DiningTable': 6, 'Dresser': 2, 'GarbageCan': 14,
        'Shelf': 2, 'SideTable': 4, 'Toaster': 1, 'Toilet': 21,
    },
    'Statue': {
        'CoffeeTable': 18, 'CounterTop': 20, 'DiningTable': 15, 'Dresser': 7, 'Shelf': 28, 'SideTable': 12,
        'TVStand': 5,
    },
    'TeddyBear': {'Bed': 9},
    'Television': {'CoffeeTable': 4, 'Dresser': 6, 'TVStand': 10},
    'TissueBox': {
        'Cart': 2, 'CoffeeTable': 11, 'CounterTop': 5, 'Desk': 3, 'DiningTable': 11, 'Drawer': 2,
        'Dresser': 3, 'Shelf': 6, 'SideTable': 11, 'TVStand': 1, 'Toilet': 1,
    },
    'ToiletPaper': {
        'Cabinet': 15, 'Cart': 1, 'CounterTop': 10, 'Drawer': 6, 'GarbageCan': 6, 'Shelf': 7, 'SideTable': 2,
        'Toilet': 20, 'ToiletPaperHanger': 13,
    },
    'Tomato': {
        'CounterTop': 57, 'DiningTable': 34, 'Fridge': 58, 'GarbageCan': 16, 'Microwave': 6, 'SideTable': 3,
        'SinkBasin': 11,
    },
    'Towel': {'CounterTop': 1, 'TowelHolder': 44},
    'Vase': {
        'Cabinet': 12, 'CoffeeTable': 3, 'CounterTop': 17, 'DiningTable': 6, 'Dresser': 4, 'Shelf': 34,
        'SideTable': 4, 'TVStand': 5,
    },
    'Watch': {
        'CoffeeTable': 8, 'DiningTable': 4, 'Drawer': 1, 'Dresser': 4, 'Shelf': 2, 'SideTable': 3,
        'TVStand': 4,
    },
    'WateringCan': {'CoffeeTable': 3},
    'Window': {'CounterTop': 6, 'Dresser': 1, 'Shelf': 2},
    'WineBottle': {
        'Cabinet': 26, 'CounterTop': 24, 'DiningTable': 28, 'Fridge': 1, 'GarbageCan': 12, 'Shelf': 5,
    },
}
RECEPTACLE_INSTANCES: dict[str, float] = {
    'ArmChair': 1.66, 'BathtubBasin': 1.0, 'Bed': 1.23, 'Cabinet': 11.53, 'Cart': 2.0, 'CoffeeMachine': 1.08,
    'CoffeeTable': 1.9, 'CounterTop': 2.12, 'Desk': 1.47, 'DiningTable': 1.55, 'Drawer': 6.11,
    'Dresser': 1.52, 'Fridge': 1.12, 'GarbageCan': 1.07, 'HandTowelHolder': 1.47, 'LaundryHamper': 1.0,
    'Microwave': 1.08, 'Ottoman': 2.4, 'Safe': 1.14, 'Shelf': 4.34, 'SideTable': 1.76, 'SinkBasin': 1.18,
    'Sofa': 1.68, 'StoveBurner': 4.1, 'TVStand': 1.17, 'Toaster': 1.0, 'Toilet': 1.32,
    'ToiletPaperHanger': 1.13, 'TowelHolder': 1.34,
}


def holder_weight(obj_class: str, recep_class: str) -> float:
    """Relative chance that one instance of ``recep_class`` holds an ``obj_class`` (smoothed, per
    instance)."""
    n = PLACEMENT_COUNTS.get(obj_class, {}).get(recep_class, 0)
    return (n + 1.0) / RECEPTACLE_INSTANCES.get(recep_class, 1.0)


if __name__ == "__main__":  # regenerate the tables: python -m leap_gym.envs.alfworld.placement DATA_DIR
    c, i = count_placements(sys.argv[1])
    print(f"PLACEMENT_COUNTS = {c!r}\nRECEPTACLE_INSTANCES = {i!r}")

