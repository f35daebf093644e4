#!/usr/bin/env python3
"""Writes a synthetic corpus of simple children's stories (one story per line).

The stories come from templates and word lists driven by a seeded RNG, so the same seed and
size always give the same bytes; nothing is downloaded. The register imitates short stories
for small children: a named character, a pet or a friend, an object, a place, a small problem,
feelings, a resolution and a moral.

    python3 guest/tools/make_corpus.py --out corpus.txt --megabytes 4 --seed 1
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

GIRLS = ["Lily", "Mia", "Sue", "Anna", "Lucy", "Emma", "Sara", "Zoe", "Amy", "Kate", "Ella",
         "Rose", "Jane", "Molly", "Daisy", "Ruby", "Lola", "Nina", "Grace", "Hannah"]
BOYS = ["Tom", "Ben", "Max", "Sam", "Tim", "Jack", "Leo", "Bob", "Jake", "Finn", "Joe",
        "Leo", "Dan", "Noah", "Alex", "Ollie", "Pete", "Ryan", "Eli", "Luke"]
# (kind, plural, name choices, sound)
PETS = [("dog", "dogs", ["Max", "Spot", "Buddy", "Rex", "Lucky", "Sparky"], "barked"),
        ("cat", "cats", ["Kitty", "Tiger", "Mittens", "Fluffy", "Whiskers"], "meowed"),
        ("bunny", "bunnies", ["Hoppy", "Snowy", "Coco", "Bun"], "wiggled its nose"),
        ("bird", "birds", ["Tweety", "Sunny", "Pip", "Chirpy"], "sang a song"),
        ("puppy", "puppies", ["Rusty", "Bingo", "Patch", "Fido"], "wagged its tail"),
        ("duck", "ducks", ["Quacky", "Daisy", "Waddles"], "quacked"),
        ("frog", "frogs", ["Hopper", "Green", "Ribbit"], "croaked"),
        ("fish", "fish", ["Bubbles", "Goldie", "Finny"], "swam in a circle")]
ANIMALS = [("bear", "big"), ("fox", "little"), ("owl", "wise"), ("mouse", "tiny"),
           ("squirrel", "busy"), ("turtle", "slow"), ("lion", "big"), ("pig", "pink"),
           ("cow", "kind"), ("sheep", "fluffy"), ("horse", "tall"), ("elephant", "big"),
           ("monkey", "funny"), ("butterfly", "pretty"), ("ant", "small"), ("bee", "busy")]
# (object, adjectives that fit it, verb phrase to play with it)
OBJECTS = [("ball", ["red", "big", "bouncy", "blue", "shiny"], "throw the ball"),
           ("kite", ["red", "colorful", "big", "yellow"], "fly the kite"),
           ("teddy bear", ["soft", "brown", "old", "little"], "hug the teddy bear"),
           ("toy car", ["red", "fast", "shiny", "little"], "race the toy car"),
           ("doll", ["pretty", "little", "new", "pink"], "dress the doll"),
           ("book", ["big", "old", "blue", "funny"], "read the book"),
           ("hat", ["red", "funny", "big", "green"], "wear the hat"),
           ("box", ["big", "brown", "shiny", "small"], "open the box"),
           ("boat", ["little", "white", "wooden", "fast"], "sail the boat"),
           ("drum", ["loud", "red", "little", "new"], "play the drum"),
           ("crayon", ["green", "purple", "yellow", "blue"], "draw with the crayon"),
           ("shell", ["pretty", "pink", "shiny", "white"], "look at the shell"),
           ("balloon", ["red", "blue", "big", "yellow"], "hold the balloon"),
           ("blanket", ["soft", "warm", "blue", "old"], "sit on the blanket"),
           ("cup", ["little", "pink", "blue", "new"], "drink from the cup"),
           ("bike", ["red", "new", "fast", "blue"], "ride the bike")]
# (place, preposition)
PLACES = [("park", "in"), ("garden", "in"), ("forest", "in"), ("beach", "at"),
          ("farm", "on"), ("school", "at"), ("river", "by"), ("hill", "on"),
          ("house", "in"), ("yard", "in"), ("lake", "by"), ("town", "in"),
          ("zoo", "at"), ("meadow", "in"), ("playground", "at"), ("kitchen", "in")]
HIDING = ["under a big tree", "behind a rock", "in the tall grass", "under the bed",
          "next to the fence", "in a small hole", "under a pile of leaves", "on a high shelf",
          "behind the door", "in the sand", "near the pond", "inside an old box"]
WEATHER = ["The sun was shining.", "The sky was blue.", "It was a warm day.",
           "It was a cold day.", "The wind was blowing.", "It was a bright morning.",
           "It was raining outside.", "The birds were singing."]
FOODS = ["an apple", "a cookie", "some cake", "a sandwich", "some soup", "a banana",
         "some bread", "an orange", "some candy", "a big pie"]
GAMES = ["tag", "hide and seek", "catch", "a fun game", "with blocks", "in the sand"]
HAPPY = ["happy", "glad", "excited", "proud", "joyful"]
SAD = ["sad", "upset", "worried", "scared", "lonely"]
MORALS = [
    "From that day on, {n} always shared {p} toys with {p} friends.",
    "{N} learned that sharing is better than keeping things to yourself.",
    "{N} learned that it is good to be kind to others.",
    "{N} learned that being brave is not so hard when you have a friend.",
    "{N} learned to always be careful and to listen to {p} mom.",
    "{N} learned that helping others makes everyone happy.",
    "{N} knew that a good friend is the best gift of all.",
    "From that day on, {n} was never scared again.",
    "{N} learned that it is important to say sorry.",
    "{N} learned that you should never give up.",
    "And they all lived happily ever after.",
    "It was the best day ever.",
    "{N} smiled and went to sleep with a happy heart.",
]


# A lowercase letter that starts a sentence: at the start (maybe after a quote), after
# ". ", "! " or "? " (maybe then a quote), or after ', "' (a quotation begins).
_SENTENCE_START = re.compile(r'(^"?|[.!?] "?|, ")([a-z])')


def _upper(match: re.Match[str]) -> str:
    return match.group(1) + match.group(2).upper()


@dataclass
class Hero:
    name: str
    she: str  # subject pronoun
    her: str  # possessive
    them: str  # object pronoun
    kind: str  # "girl", "boy", or an animal


class Story:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sentences: list[str] = []

    def pick(self, items: Sequence[str]) -> str:
        return items[self.rng.randrange(len(items))]

    def say(self, *sentences: str) -> None:
        for sentence in sentences:
            self.sentences.append(_SENTENCE_START.sub(_upper, sentence))

    def text(self) -> str:
        return " ".join(self.sentences)


def make_hero(rng: random.Random) -> Hero:
    roll = rng.random()
    if roll < 0.45:
        return Hero(rng.choice(GIRLS), "she", "her", "her", "girl")
    if roll < 0.9:
        return Hero(rng.choice(BOYS), "he", "his", "him", "boy")
    kind = rng.choice(PETS)[0] if rng.random() < 0.5 else rng.choice(ANIMALS)[0]
    name = rng.choice(GIRLS + BOYS)
    if name in GIRLS:
        return Hero(name, "she", "her", "her", kind)
    return Hero(name, "he", "his", "him", kind)


def a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def opening(s: Story, hero: Hero, pet: tuple[str, str, str], place: tuple[str, str]) -> None:
    pet_kind, pet_name, pet_sound = pet
    size = s.pick(["little", "small", "happy", "kind", "curious", "brave", "shy", "playful"])
    where = f"{place[1]} the {place[0]}"
    choice = s.rng.randrange(7)
    if choice == 0:
        s.say(f"once upon a time, there was {a(size)} {hero.kind} named {hero.name}.")
    elif choice == 1:
        s.say(f"once upon a time, {where}, there lived {a(size)} {hero.kind} "
              f"named {hero.name}.")
    elif choice == 2:
        s.say(f"{hero.name} was {a(size)} {hero.kind} who loved to play {where}.")
    elif choice == 3:
        s.say(f"{hero.name} and {hero.her} {pet_kind} {pet_name} were best friends.")
    elif choice == 4:
        s.say(f"{hero.name} and {hero.her} {pet_kind} liked to play {where}.")
    elif choice == 5:
        s.say(f"one day, {a(size)} {hero.kind} named {hero.name} went to the {place[0]}.")
    else:
        s.say(f"there once was {a(size)} {hero.kind} called {hero.name}.")
    if choice not in (3, 4):
        s.say(s.pick([
            f"{hero.she} had {a(pet_kind)} named {pet_name}.",
            f"{hero.she} lived with {hero.her} mom and dad in a small house.",
            f"{hero.she} liked to play with {hero.her} {pet_kind}, {pet_name}.",
            f"{hero.she} loved to run and jump and laugh.",
        ]))
    else:
        s.say(s.pick([f"the {pet_kind} was called {pet_name}.",
                      f"every day, {pet_name} {pet_sound} when {hero.name} came home.",
                      "they did everything together."]))


def lost_and_found(s: Story, hero: Hero, pet: tuple[str, str, str],
                   place: tuple[str, str]) -> str:
    obj, adjs, _ = s.rng.choice(OBJECTS)
    adj = s.pick(adjs)
    pet_kind, pet_name, pet_sound = pet
    s.say(f"{hero.name} had {a(adj)} {obj}. {hero.she} loved it very much.",
          s.pick(WEATHER),
          f"one day, {hero.name} took the {obj} to the {place[0]}.",
          f"{hero.she} played with it all day long.",
          f"but when it was time to go home, the {obj} was gone!",
          f"{hero.name} felt {s.pick(SAD)}. {hero.she} looked everywhere, "
          f"but {hero.she} could not find it.")
    if s.rng.random() < 0.5:
        s.say(f"then {pet_name} {pet_sound}. the {pet_kind} ran to a spot {s.pick(HIDING)}.",
              f"there was the {adj} {obj}!",
              f"{hero.name} hugged {pet_name} and said, \"thank you, {pet_name}! "
              f"you are the best {pet_kind}!\"")
    else:
        friend = s.pick(GIRLS + BOYS)
        s.say(f"{hero.her} friend {friend} came to help.",
              f"\"let's look together,\" said {friend}.",
              f"they looked {s.pick(HIDING)} and found the {obj}.",
              f"\"thank you, {friend}!\" said {hero.name}. {hero.she} was so {s.pick(HAPPY)}.")
    return s.pick(["{N} learned to always take care of {p} things.",
                   "{N} knew that friends always help each other.",
                   "it was the best day ever.",
                   "and they all lived happily ever after."])


def sharing(s: Story, hero: Hero, pet: tuple[str, str, str], place: tuple[str, str]) -> str:
    obj, adjs, play = s.rng.choice(OBJECTS)
    adj = s.pick(adjs)
    friend = s.pick(GIRLS + BOYS)
    s.say(f"one day, {hero.name} went to the {place[0]} with {hero.her} new {adj} {obj}.",
          f"{hero.she} saw {hero.her} friend {friend} there.",
          f"{friend} wanted to {play} too.",
          f"\"can I play with your {obj}?\" asked {friend}.",
          f"{hero.name} did not want to share. \"no, it is mine!\" {hero.she} said.",
          f"{friend} was sad and walked away.")
    s.say(f"{hero.name} played alone, but it was not fun.",
          f"{hero.she} felt {s.pick(['sad', 'lonely', 'bad'])}.",
          f"{hero.she} ran to {friend} and said, \"I am sorry. let's play together.\"",
          f"{friend} smiled. they took turns to {play}.",
          "they laughed and played until the sun went down.")
    return s.pick(["{N} learned that sharing is caring.",
                   "from that day on, {n} always shared {p} toys with {p} friends.",
                   "{N} learned that it is more fun to play together.",
                   "{N} learned that it is important to say sorry."])


def brave(s: Story, hero: Hero, pet: tuple[str, str, str], place: tuple[str, str]) -> str:
    animal, animal_adj = s.rng.choice(ANIMALS)
    s.say(s.pick(WEATHER),
          f"{hero.name} went for a walk {place[1]} the {place[0]}.",
          f"suddenly, {hero.she} heard a loud noise. {hero.she} was very scared.",
          f"{hero.she} wanted to run home to {hero.her} mom.",
          f"but then {hero.she} saw {a(animal_adj)} {animal}. the {animal} was stuck "
          f"{s.pick(HIDING)}.")
    s.say(f"\"please help me,\" said the {animal}.",
          f"{hero.name} took a deep breath. {hero.she} was brave.",
          f"{hero.she} helped the {animal} get out.",
          f"the {animal} was very {s.pick(HAPPY)}. \"thank you!\" it said.",
          f"the {animal} and {hero.name} became good friends.")
    return s.pick(["{N} learned that being brave can help others.",
                   "from that day on, {n} was never scared again.",
                   "{N} learned that helping others makes everyone happy."])


def warning(s: Story, hero: Hero, pet: tuple[str, str, str], place: tuple[str, str]) -> str:
    thing = s.pick(["climb the big tree", "go near the river", "touch the hot stove",
                    "run on the wet floor", "go out in the rain", "eat all the candy"])
    grown = s.pick(["mom", "dad", "grandma", "grandpa", "teacher"])
    hurt = s.pick(["fell down and hurt {p} knee", "got very wet and cold",
                   "got a big tummy ache", "cried for a long time"])
    s.say(f"one day, {hero.name} wanted to {thing}.",
          f"{hero.her} {grown} said, \"no, {hero.name}. it is not safe. please do not "
          f"{thing}.\"",
          f"but {hero.name} did not listen. {hero.she} wanted to try.",
          f"when no one was looking, {hero.she} tried to {thing}.",
          f"oh no! {hero.she} {hurt.format(p=hero.her)}.")
    s.say(f"{hero.her} {grown} came and gave {hero.them} a big hug.",
          f"\"I am sorry,\" said {hero.name}. \"I should have listened to you.\"",
          f"{hero.her} {grown} smiled and said, \"it is okay. now you know.\"")
    return s.pick(["{N} learned to always listen to {p} " + grown + ".",
                   "{N} learned to always be careful.",
                   "{N} never forgot that day."])


def new_thing(s: Story, hero: Hero, pet: tuple[str, str, str], place: tuple[str, str]) -> str:
    skill = s.pick(["swim", "ride a bike", "climb a tree", "read a book", "bake a cake",
                    "fly a kite", "sing a song", "draw a picture", "tie {p} shoes"])
    skill = skill.format(p=hero.her)
    helper = s.pick(["mom", "dad", "big sister", "big brother", "friend " + s.pick(GIRLS)])
    s.say(f"{hero.name} wanted to learn how to {skill}.",
          f"{hero.she} tried and tried, but it was very hard.",
          f"{hero.she} felt {s.pick(SAD)} and wanted to give up.",
          f"{hero.her} {helper} said, \"do not give up. try one more time.\"",
          f"so {hero.name} tried again. and again. and again.",
          f"at last, {hero.she} did it! {hero.name} could {skill}!",
          f"{hero.she} was so {s.pick(HAPPY)}. {hero.her} {helper} clapped and cheered.")
    return s.pick(["{N} learned that you should never give up.",
                   "{N} learned that practice makes things easy.",
                   "it was the best day ever."])


def picnic(s: Story, hero: Hero, pet: tuple[str, str, str], place: tuple[str, str]) -> str:
    pet_kind, pet_name, _ = pet
    food = s.pick(FOODS)
    friend = s.pick(GIRLS + BOYS)
    animal, animal_adj = s.rng.choice(ANIMALS)
    s.say(s.pick(WEATHER),
          f"{hero.name} and {friend} went to the {place[0]} for a picnic.",
          f"they brought {food} and a blanket. {pet_name} the {pet_kind} came too.",
          f"they played {s.pick(GAMES)} and laughed a lot.",
          f"then {a(animal_adj)} {animal} came to say hello.",
          f"the {animal} looked hungry. {hero.name} gave it some of {hero.her} food.",
          f"the {animal} was so {s.pick(HAPPY)}. it thanked {hero.name} and {friend}.")
    s.say("when the sun went down, they went home.",
          f"{hero.name} told {hero.her} mom about the {animal}.",
          f"\"you were very kind,\" said mom. {hero.name} felt {s.pick(HAPPY)}.")
    return s.pick(["{N} learned that it is good to be kind to others.",
                   "{N} learned that sharing is caring.",
                   "{N} smiled and went to sleep with a happy heart."])


PLOTS = [lost_and_found, sharing, brave, warning, new_thing, picnic]


def story(rng: random.Random) -> str:
    s = Story(rng)
    hero = make_hero(rng)
    kind, _, names, sound = rng.choice(PETS)
    pet = (kind, rng.choice(names), sound)
    place = rng.choice(PLACES)
    opening(s, hero, pet, place)
    moral = rng.choice(PLOTS)(s, hero, pet, place)
    if rng.random() < 0.3:
        moral = rng.choice(MORALS)
    s.say(moral.format(N=hero.name, n=hero.name, p=hero.her))
    return s.text()


def generate(seed: int, megabytes: float) -> list[str]:
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    stories: list[str] = []
    size = 0
    while size < target:
        text = story(rng)
        stories.append(text)
        size += len(text) + 1
    return stories


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output text file")
    parser.add_argument("--megabytes", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    stories = generate(args.seed, args.megabytes)
    args.out.write_text("\n".join(stories) + "\n", encoding="utf-8")
    print(f"wrote {len(stories)} stories, {args.out.stat().st_size} bytes to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
