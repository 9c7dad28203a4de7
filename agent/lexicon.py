"""The words people use for films: genre synonyms and slang, negation, years, counts, acts.

Data only; ``agent.offline_parser`` compiles it. Every phrase here is written the way a person
types it and is tokenised by the same tokenizer as the request (``agent.titles.tokenize``), so
"sci-fi", "sci fi" and "Sci-Fi" are one entry, and apostrophes may be typed or left out.

Two strengths of genre words, because some words name a genre only when films are being discussed:

- ``STRONG``: names of genres and unambiguous slang ("comedy", "romcom", "whodunit"). They count
  wherever they appear, and typos of them are corrected.
- ``WEAK``: descriptions and topics ("funny", "scary", "space", "kids", "cowboys"). They count when
  the message is about films (it asks for one, names a film, a genre, a year...) or is a bare
  phrase ("time travel"), not in a statement about something else ("my cat is so funny").

Plurals of single words are derived ("western" -> "westerns"), so only the singular is listed.
"""
from __future__ import annotations

# --------------------------------------------------------------------------- genre words
STRONG: dict[str, tuple[str, ...]] = {
    # Action
    "action": ("Action",), "action packed": ("Action",), "actioner": ("Action",),
    "shoot em up": ("Action",), "martial arts": ("Action",), "kung fu": ("Action",),
    "superhero": ("Action",), "super hero": ("Action",), "blockbuster action": ("Action",),
    # Adventure
    "adventure": ("Adventure",), "adventurous": ("Adventure",), "swashbuckler": ("Adventure",),
    "swashbuckling": ("Adventure",),
    # Animation
    "animation": ("Animation",), "animated": ("Animation",), "cartoon": ("Animation",),
    "toon": ("Animation",), "anime": ("Animation",), "claymation": ("Animation",),
    "stop motion": ("Animation",), "pixar": ("Animation",),
    # Children's
    "children": ("Children's",), "childrens": ("Children's",), "kids movie": ("Children's",),
    "kids film": ("Children's",), "family movie": ("Children's",), "family film": ("Children's",),
    "family friendly": ("Children's",), "kid friendly": ("Children's",),
    "child friendly": ("Children's",), "for kids": ("Children's",), "for children": ("Children's",),
    "for the whole family": ("Children's",), "whole family": ("Children's",),
    # Comedy
    "comedy": ("Comedy",), "comedic": ("Comedy",), "slapstick": ("Comedy",), "spoof": ("Comedy",),
    "parody": ("Comedy",), "satire": ("Comedy",), "screwball": ("Comedy",),
    # Crime
    "crime": ("Crime",), "gangster": ("Crime",), "mobster": ("Crime",), "mafia": ("Crime",),
    "heist": ("Crime",), "caper": ("Crime",),
    # Documentary
    "documentary": ("Documentary",), "doc": ("Documentary",), "docu": ("Documentary",),
    "docuseries": ("Documentary",), "nonfiction": ("Documentary",), "non fiction": ("Documentary",),
    # Drama
    "drama": ("Drama",), "dramatic": ("Drama",), "melodrama": ("Drama",),
    "tearjerker": ("Drama",), "tear jerker": ("Drama",),
    # Fantasy
    "fantasy": ("Fantasy",), "sword and sorcery": ("Fantasy",), "fairy tale": ("Fantasy",),
    "fairytale": ("Fantasy",),
    # Film-Noir
    "noir": ("Film-Noir",), "film noir": ("Film-Noir",), "filmnoir": ("Film-Noir",),
    "neo noir": ("Film-Noir",), "hardboiled": ("Film-Noir",), "hard boiled": ("Film-Noir",),
    # Horror
    "horror": ("Horror",), "slasher": ("Horror",), "splatter": ("Horror",),
    "zombie": ("Horror",), "vampire": ("Horror",), "werewolf": ("Horror",),
    # Musical
    "musical": ("Musical",), "song and dance": ("Musical",), "sing along": ("Musical",),
    "singalong": ("Musical",),
    # Mystery
    "mystery": ("Mystery",), "whodunit": ("Mystery",), "whodunnit": ("Mystery",),
    "murder mystery": ("Mystery",),
    # Romance
    "romance": ("Romance",), "romantic": ("Romance",), "love story": ("Romance",),
    "chick flick": ("Romance",),
    # Sci-Fi
    "sci fi": ("Sci-Fi",), "scifi": ("Sci-Fi",), "science fiction": ("Sci-Fi",),
    "space opera": ("Sci-Fi",), "cyberpunk": ("Sci-Fi",),
    # Thriller
    "thriller": ("Thriller",), "suspense": ("Thriller",), "suspenseful": ("Thriller",),
    "edge of my seat": ("Thriller",), "edge of your seat": ("Thriller",),
    "nail biter": ("Thriller",), "nailbiter": ("Thriller",),
    # War
    "war": ("War",), "war movie": ("War",), "wartime": ("War",), "ww2": ("War",),
    "wwii": ("War",), "ww1": ("War",), "wwi": ("War",), "world war": ("War",),
    # Western
    "western": ("Western",), "spaghetti western": ("Western",), "wild west": ("Western",),
    "old west": ("Western",), "cowboy movie": ("Western",),
    # several at once
    "romcom": ("Romance", "Comedy"), "rom com": ("Romance", "Comedy"),
    "romantic comedy": ("Romance", "Comedy"), "horror comedy": ("Horror", "Comedy"),
    "dramedy": ("Comedy", "Drama"), "family drama": ("Drama",),
}

WEAK: dict[str, tuple[str, ...]] = {
    # Action
    "explosion": ("Action",), "explosive": ("Action",), "shootout": ("Action",),
    "gunfight": ("Action",), "car chase": ("Action",), "fight scene": ("Action",),
    "fighting": ("Action",), "karate": ("Action",), "stunt": ("Action",),
    "adrenaline": ("Action",), "badass": ("Action",), "chase": ("Action",),
    # Adventure
    "pirate": ("Adventure",), "treasure": ("Adventure",), "quest": ("Adventure",),
    "expedition": ("Adventure",), "jungle": ("Adventure",),
    # Children's
    "kid": ("Children's",), "family": ("Children's",), "little one": ("Children's",),
    "toddler": ("Children's",), "little kid": ("Children's",),
    # Comedy
    "funny": ("Comedy",), "funnier": ("Comedy",), "funniest": ("Comedy",),
    "hilarious": ("Comedy",), "humor": ("Comedy",), "humour": ("Comedy",),
    "humorous": ("Comedy",), "laugh": ("Comedy",), "goofy": ("Comedy",), "silly": ("Comedy",),
    "witty": ("Comedy",), "laugh out loud": ("Comedy",),
    # Crime
    "mob": ("Crime",), "cop": ("Crime",), "police": ("Crime",), "robbery": ("Crime",),
    "criminal": ("Crime",), "hitman": ("Crime",), "con artist": ("Crime",),
    "drug lord": ("Crime",), "organized crime": ("Crime",),
    # Drama
    "sad": ("Drama",), "emotional": ("Drama",), "make me cry": ("Drama",),
    "heartbreaking": ("Drama",),
    # Fantasy
    "magic": ("Fantasy",), "magical": ("Fantasy",), "wizard": ("Fantasy",),
    "witch": ("Fantasy",), "dragon": ("Fantasy",), "elf": ("Fantasy",), "elves": ("Fantasy",),
    "sorcery": ("Fantasy",), "mythical": ("Fantasy",), "enchanted": ("Fantasy",),
    # Horror
    "scary": ("Horror",), "scarier": ("Horror",), "scariest": ("Horror",), "scare": ("Horror",),
    "frightening": ("Horror",), "terrifying": ("Horror",), "creepy": ("Horror",),
    "spooky": ("Horror",), "gore": ("Horror",), "gory": ("Horror",), "haunted": ("Horror",),
    "ghost": ("Horror",), "demon": ("Horror",), "monster": ("Horror",),
    "possession": ("Horror",), "serial killer": ("Horror",), "bloody": ("Horror",),
    "freaky": ("Horror",), "nightmare": ("Horror",),
    # Musical
    "singing": ("Musical",), "song": ("Musical",), "broadway": ("Musical",),
    "dance number": ("Musical",),
    # Mystery
    "detective": ("Mystery",), "sleuth": ("Mystery",), "whodunit style": ("Mystery",),
    "puzzle": ("Mystery",), "clue": ("Mystery",), "unsolved": ("Mystery",),
    # Romance
    "in love": ("Romance",), "date night": ("Romance",), "date movie": ("Romance",),
    "falling in love": ("Romance",),
    "lovers": ("Romance",), "relationship": ("Romance",),
    # Sci-Fi
    "space": ("Sci-Fi",), "outer space": ("Sci-Fi",), "alien": ("Sci-Fi",),
    "robot": ("Sci-Fi",), "time travel": ("Sci-Fi",), "time traveling": ("Sci-Fi",),
    "futuristic": ("Sci-Fi",), "dystopia": ("Sci-Fi",), "dystopian": ("Sci-Fi",),
    "spaceship": ("Sci-Fi",), "starship": ("Sci-Fi",), "galaxy": ("Sci-Fi",),
    "extraterrestrial": ("Sci-Fi",), "android": ("Sci-Fi",), "cyborg": ("Sci-Fi",),
    "astronaut": ("Sci-Fi",), "ufo": ("Sci-Fi",),
    # Thriller
    "thrilling": ("Thriller",), "tense": ("Thriller",), "spy": ("Thriller",),
    "conspiracy": ("Thriller",), "espionage": ("Thriller",),
    "twisty": ("Thriller",),
    # War
    "soldier": ("War",), "military": ("War",), "battle": ("War",), "battlefield": ("War",),
    "army": ("War",), "combat": ("War",), "vietnam": ("War",), "d day": ("War",),
    "trench": ("War",), "sf": ("Sci-Fi",),
    # Western
    "cowboy": ("Western",), "gunslinger": ("Western",), "outlaw": ("Western",),
    "sheriff": ("Western",), "frontier": ("Western",), "cowboys and indians": ("Western",),
    "ranch": ("Western",),
}

# --------------------------------------------------------------------------- negation
# Phrases that open an exclusion scope: what follows them, up to the end of the clause, is
# not wanted ("no horror or thrillers", "anything but westerns", "I can't stand musicals").
NEGATION_CUES: tuple[str, ...] = (
    "no", "not", "nothing", "none", "without", "except", "except for", "excluding", "but not",
    "anything but", "everything but", "other than", "rather than", "instead of", "nor",
    "hate", "hated", "dislike", "detest", "loathe", "cant stand", "cannot stand", "can not stand",
    "dont like", "do not like", "dont want", "do not want", "dont need", "dont love",
    "didnt like", "not into", "not a fan of", "no more", "avoid", "skip", "sick of", "tired of",
    "fed up with", "had enough of", "enough of", "keep away from", "stay away from", "isnt",
    "arent", "wasnt", "less", "minus", "spare me", "allergic to", "never again", "neither",
    "not in the mood for", "dont feel like", "dont do",
)
# Look like negation but do not exclude what follows.
NEGATION_NOOPS: tuple[str, ...] = (
    "dont mind", "wouldnt mind", "not only", "not sure", "no idea", "no problem", "no worries",
    "not bad", "no matter", "no doubt", "dont care", "nothing but", "not just", "dont know",
    "not seen", "havent seen", "never seen", "no thanks",
)
# End an exclusion scope (besides punctuation): "no horror but a thriller", "no gore, just suspense".
SCOPE_BREAKERS: tuple[str, ...] = (
    "but", "though", "although", "however", "yet", "instead", "just", "only", "maybe",
    "preferably", "rather", "prefer", "with", "something", "i want", "i like", "i love",
    "give me", "show me", "lots of", "plenty of", "a lot of", "more", "and i", "so",
    "because", "cause", "since", "please", "pls",
)
# After a genre mention in the same clause, these turn it into an exclusion ("westerns are boring").
POST_NEGATIONS: tuple[str, ...] = (
    "are boring", "is boring", "bore me", "are not my thing", "is not my thing", "arent my thing",
    "isnt my thing", "not my thing", "not for me", "are not for me", "is not for me", "suck",
    "sucks", "are overrated", "is overrated", "are lame", "is lame", "are the worst",
    "is the worst", "get on my nerves", "no thanks", "no thank you", "nope", "are terrible",
    "is terrible", "not my cup of tea",
)

# --------------------------------------------------------------------------- request context
MOVIE_NOUNS: tuple[str, ...] = (
    "movie", "film", "flick", "picture", "pic", "cinema", "feature", "title", "show", "series",
    "one", "stuff", "thing", "something", "anything", "option", "pick", "recommendation",
    "suggestion", "watch", "idea",
)
REQUEST_CUES: tuple[str, ...] = (
    "recommend", "recommended", "suggest", "suggestions", "watch", "watching", "see", "show me",
    "find", "find me", "give me", "want", "wanna", "looking for", "in the mood", "feel like",
    "got any", "any good", "something", "anything", "nothing", "stuff", "pick", "picks", "options",
    "ideas", "need", "need a", "how about", "what about", "could use", "id like", "i would like",
    "lets see", "play", "stream", "bored", "surprise me", "whatever", "idk", "dunno", "any",
)
# Words that make a message a statement about something else rather than a bare phrase:
# weak genre words in "my cat is so funny" do not count.
PREDICATE_MARKERS: tuple[str, ...] = (
    "is", "are", "am", "was", "were", "im", "youre", "hes", "shes", "its", "were", "theyre",
    "thats", "whats", "tell", "say", "said", "agree", "think", "be", "been", "do", "does", "did",
    "have", "has", "had", "can", "cant", "could", "would", "should",
)
# Say nothing about which film: never kept as keywords.
FILLERS: tuple[str, ...] = (
    "a", "an", "the", "some", "any", "of", "for", "to", "in", "on", "at", "by", "from", "with",
    "and", "or", "but", "so", "if", "then", "than", "that", "this", "these", "those", "it", "its",
    "i", "me", "my", "mine", "we", "us", "our", "you", "your", "they", "them", "he", "she", "his",
    "her", "im", "ive", "id", "ill", "youre", "is", "are", "am", "was", "were", "be", "been", "do",
    "does", "did", "have", "has", "had", "can", "could", "would", "should", "will", "shall", "may",
    "might", "must", "what", "which", "who", "whom", "whose", "where", "when", "why", "how",
    "please", "pls", "plz", "thanks", "thank", "thx", "ty", "cheers", "hi", "hello", "hey", "yo",
    "hiya", "ok", "okay", "k", "cool", "great", "good", "nice", "best", "top", "really", "very",
    "quite", "just", "also", "too", "maybe", "perhaps", "kind", "sort", "type", "like", "lol",
    "lmao", "haha", "hmm", "um", "uh", "yeah", "yes", "yep", "sure", "well", "now", "tonight",
    "today", "tomorrow", "weekend", "evening", "night", "afternoon", "morning", "time", "all",
    "watch", "watching", "see", "seeing", "recommend", "recommendation", "recommendations",
    "suggest", "suggestion", "suggestions", "want", "wanna", "need", "looking", "look", "find",
    "give", "show", "get", "got", "pick", "picks", "option", "options", "idea", "ideas",
    "something", "anything", "nothing", "stuff", "thing", "things", "one", "ones", "movie",
    "movies", "film", "films", "flick", "flicks", "picture", "pictures", "pic", "pics", "cinema",
    "title", "titles", "genre", "genres", "mood", "feel", "feeling", "enjoy", "love", "loved",
    "liked", "enjoyed", "bored", "boring", "tired", "else", "more", "other", "another", "lot",
    "lots", "bit", "little", "much", "many", "few", "couple", "there", "here", "about", "into",
    "up", "out", "off", "over", "again", "let", "lets", "us", "surprise", "whatever", "idk",
    "dunno", "preferably", "prefer", "rather", "either", "fine", "picky", "wife", "husband",
    "friend", "friends", "girlfriend", "boyfriend", "partner", "son", "daughter", "dad", "mom",
    "mum", "parents", "make", "made", "set", "go", "going", "try", "trying", "play", "stream",
    "available", "similar", "same", "vibe", "vibes", "style", "ish", "type", "sorts", "kinds",
    "old", "older", "new", "newer", "recent", "classic", "classics", "era", "year", "years",
    "decade", "released", "release", "not", "no", "without", "except", "hate", "dont",
    "please", "thats", "whats", "lets", "gonna", "wanna", "actually", "tho", "though", "should",
)

# --------------------------------------------------------------------------- titles
# A film named after one of these is a reference ("something like Heat", "why did you pick Fargo").
TITLE_CUES: tuple[str, ...] = (
    "like", "liked", "love", "loved", "enjoyed", "adored", "similar to", "such as", "as good as",
    "reminds me of", "in the vein of", "along the lines of", "in the style of", "fan of",
    "watched", "seen", "saw", "same as", "than", "pick", "picked", "choose", "chose", "chosen",
    "recommend", "recommended", "suggest", "suggested", "include", "included",
    "favorite is", "favourite is", "favorite movie is", "favourite movie is", "rewatch",
    "rewatched",
)

# --------------------------------------------------------------------------- years
DECADE_WORDS: dict[str, int] = {
    "twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950, "sixties": 1960,
    "seventies": 1970, "eighties": 1980, "nineties": 1990,
}
DECADE_PARTS: dict[str, tuple[int, int]] = {"early": (0, 3), "mid": (3, 6), "middle": (3, 6), "late": (6, 9)}
# year comparators: the phrase, which side it bounds, and whether the year itself is included
BEFORE: tuple[str, ...] = ("before", "pre", "prior to", "earlier than", "older than")
UNTIL: tuple[str, ...] = ("until", "till", "up to", "up until", "through", "no later than")
AFTER: tuple[str, ...] = ("after", "post", "later than", "newer than", "more recent than")
SINCE: tuple[str, ...] = ("since", "no earlier than")
# "older" / "classic" and "recent" as ranges (the catalog ends in 1998)
OLD_WORDS: tuple[str, ...] = (
    "older", "oldie", "oldies", "classic", "classics", "vintage", "golden age", "black and white",
    "old fashioned", "old school", "old movie", "old movies", "old film", "old films", "old one",
    "old ones", "old stuff", "something old", "anything old", "older stuff",
)
RECENT_WORDS: tuple[str, ...] = (
    "recent", "newer", "newest", "latest", "modern", "new movie", "new movies", "new film",
    "new films", "new releases", "new ones", "new stuff", "more recent",
)
OLD_END_YEAR = 1979          # "classic"/"older": released before 1980
RECENT_SPAN_YEARS = 4        # "recent": the catalog's last four release years (1995-1998)
OLDER_STEP_YEARS = 10        # "older please" after a request that had only an upper bound

# --------------------------------------------------------------------------- counts
NUMBER_WORDS: dict[str, int] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "couple": 2, "a couple": 2, "a few": 3, "few": 3, "a handful": 5, "handful": 5, "a dozen": 12,
    "dozen": 12,
}
COUNT_VERBS: tuple[str, ...] = (
    "give me", "show me", "recommend", "suggest", "list", "need", "want", "get me", "find",
    "find me", "top", "pick", "name", "another", "just",
)
COUNT_NOUNS: tuple[str, ...] = (
    "movie", "film", "flick", "pick", "recommendation", "suggestion", "option", "title", "one",
    "more", "other", "choice", "idea",
)

# --------------------------------------------------------------------------- acts
ORDINALS: dict[str, int] = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "seventh": 7, "7th": 7, "eighth": 8, "8th": 8,
    "ninth": 9, "9th": 9, "tenth": 10, "10th": 10, "top one": 1,
}
EXPLAIN_CUES: tuple[str, ...] = (
    "why", "how come", "what made you", "explain", "reason for", "reason why", "whats the reason",
    "what is the reason", "justify",
)
# what a "why" question must point at to be about the recommendations
EXPLAIN_TARGETS: tuple[str, ...] = (
    "pick", "picked", "choose", "chose", "chosen", "recommend", "recommended", "suggest",
    "suggested", "include", "included", "that", "this", "it", "one", "these", "those", "them",
    "show", "showed", "list", "listed", "number", "option",
)
MORE_CUES: tuple[str, ...] = (
    "more", "next", "another", "others", "other", "else", "continue", "keep going", "go on",
    "different", "again", "new batch", "page",
)
# Follow-up wording: with a standing request, a message with one of these adjusts it.
REFINE_CUES: tuple[str, ...] = (
    "make it", "instead", "also", "too", "as well", "but", "only", "less", "more", "actually",
    "rather", "same", "how about", "what about", "now", "and", "no", "not", "without", "nothing",
    "older", "newer", "funnier", "scarier", "darker", "lighter", "shorter", "longer", "except",
    "this time", "change", "switch",
)
# A new request in its own right, even with a standing one.
FRESH_CUES: tuple[str, ...] = (
    "recommend", "suggest", "i want", "i need", "id like", "i would like", "looking for",
    "find me", "give me", "show me", "in the mood for", "new search", "start over", "forget that",
    "something else entirely",
)

# Attempts to steer the agent instead of asking for films; matched as regular expressions on the
# lower-cased text. Such messages are answered as chit-chat with an empty intent.
INJECTION_PATTERNS: tuple[str, ...] = (
    r"\bignore\b.{0,40}\b(instructions?|prompts?|rules|guidelines|system|above|previous)\b",
    r"\bforget\b.{0,40}\b(instructions?|prompts?|rules|everything above|all above)\b",
    r"\bdisregard\b", r"\bsystem prompt\b", r"\bdeveloper mode\b", r"\bjailbreak", r"\bdan mode\b",
    r"\bpretend (to be|you are|you're)\b", r"\bact as (an? )?(admin|administrator|root|developer|system)\b",
    r"\byou are now\b", r"\buser\s*#?\s*\d+", r"\b(other|another) users?'?s?\b.{0,20}\b(history|data|ratings?)\b",
    r"\b(api|secret) keys?\b", r"\bpasswords?\b", r"\bcredentials?\b", r"\badmin(istrator)? (access|mode|rights)\b",
    r"\bdrop table\b", r"<\s*script", r"\bexec(ute)?\s*\(", r"\bsudo\b", r"\brm -rf\b",
    r"\breveal\b.{0,30}\b(prompt|instructions?|config|secret)", r"\bprint\b.{0,30}\b(prompt|instructions?|config)",
)

# --------------------------------------------------------------------------- embeddings backstop
# One short description per genre, written as a person would describe a film of it. The parser
# compares the words its lexicon could not place with these (cosine, MiniLM) and adds a genre only
# above a conservative threshold.
GENRE_DESCRIPTIONS: dict[str, str] = {
    "Action": "an action movie with fights, shootouts, explosions, car chases and stunts",
    "Adventure": "an adventure film about a journey, an expedition, explorers, pirates or a treasure hunt",
    "Animation": "an animated cartoon film, hand-drawn or computer animation, anime",
    "Children's": "a children's film for kids and the whole family to watch together",
    "Comedy": "a funny comedy that makes you laugh, jokes and humour",
    "Crime": "a crime film about gangsters, criminals, heists, the mob, cops and robbers",
    "Documentary": "a documentary film about real people and true events, non-fiction",
    "Drama": "a serious emotional drama about people's lives and relationships",
    "Fantasy": "a fantasy film with magic, wizards, dragons, knights, myths and enchanted kingdoms",
    "Film-Noir": "a dark 1940s film noir with a cynical detective, a femme fatale and shadows",
    "Horror": "a scary horror film with monsters, ghosts, blood, demons and killers",
    "Musical": "a musical film with singing, songs and dance numbers",
    "Mystery": "a mystery film with a detective solving a puzzling crime, clues and a whodunit",
    "Romance": "a romantic film about love, a couple falling in love, dating",
    "Sci-Fi": "a science fiction film with space travel, aliens, robots, the future and technology",
    "Thriller": "a suspenseful thriller with tension, danger, conspiracies and spies",
    "War": "a war film about soldiers, battles, armies and the world wars",
    "Western": "a western film with cowboys, gunslingers, sheriffs, horses and the wild west frontier",
}
