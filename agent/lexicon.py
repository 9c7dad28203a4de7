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
# Per genre, the words that name it outright (strong) and the words that describe or are typical
# of it (weak). Several genres at once: ``MULTI``.
_STRONG_BY_GENRE: dict[str, tuple[str, ...]] = {
    "Action": ("action", "action packed", "actioner", "shoot em up", "beat em up", "martial arts",
               "kung fu", "superhero", "super hero", "high octane", "action hero", "bond movie",
               "james bond"),
    "Adventure": ("adventure", "adventurous", "swashbuckler", "swashbuckling", "sword and sandal",
                  "globetrotting", "treasure hunt"),
    "Animation": ("animation", "animated", "cartoon", "cartoony", "toon", "anime", "claymation",
                  "stop motion", "pixar", "hand drawn", "cgi animated", "animated feature"),
    "Children's": ("children", "childrens", "kids movie", "kids film", "kids flick", "kiddie",
                   "family movie", "family film", "family friendly", "kid friendly", "child friendly",
                   "for kids", "for the kids", "for children", "for my kids", "for toddlers",
                   "for the whole family", "whole family", "family night", "g rated", "rated g",
                   "suitable for kids", "preschool"),
    "Comedy": ("comedy", "comedic", "slapstick", "spoof", "parody", "satire", "satirical",
               "screwball", "farce", "laugh riot", "sitcom", "mockumentary", "standup", "stand up comedy"),
    "Crime": ("crime", "gangster", "mobster", "mafia", "heist", "caper", "true crime", "cop movie",
              "cop show", "crime show", "crime story", "police procedural", "organized crime",
              "crime boss"),
    "Documentary": ("documentary", "doc", "docu", "docs", "docuseries", "nonfiction", "non fiction",
                    "nature doc", "real footage"),
    "Drama": ("drama", "dramatic", "melodrama", "tearjerker", "tear jerker", "weepie", "weepy",
              "period piece", "period drama", "biopic", "coming of age", "character study",
              "slice of life", "docudrama"),
    "Fantasy": ("fantasy", "sword and sorcery", "fairy tale", "fairytale", "high fantasy",
                "dark fantasy"),
    "Film-Noir": ("noir", "film noir", "filmnoir", "neo noir", "hardboiled", "hard boiled"),
    "Horror": ("horror", "slasher", "splatter", "zombie", "vampire", "werewolf", "creature feature",
               "scary movie", "scary film", "ghost story", "haunted house", "jump scare",
               "found footage", "monster movie", "gorefest", "bloodbath", "exorcism"),
    "Musical": ("musical", "song and dance", "sing along", "singalong", "movie musical",
                "rock opera", "show tune", "broadway musical"),
    "Mystery": ("mystery", "whodunit", "whodunnit", "murder mystery", "detective story",
                "detective movie", "detective film"),
    "Romance": ("romance", "romantic", "love story", "chick flick", "romantic drama"),
    "Sci-Fi": ("sci fi", "scifi", "science fiction", "space opera", "cyberpunk", "hard sci fi"),
    "Thriller": ("thriller", "suspense", "suspenseful", "edge of my seat", "edge of your seat",
                 "edge of the seat", "nail biter", "nailbiter", "psychological thriller",
                 "political thriller", "erotic thriller", "spy thriller", "cat and mouse"),
    "War": ("war", "war movie", "war film", "war epic", "wartime", "ww2", "wwii", "ww1", "wwi",
            "world war", "world war ii", "world war 2", "world war one", "world war two"),
    "Western": ("western", "spaghetti western", "wild west", "old west", "cowboy movie", "oater",
                "horse opera"),
}
_WEAK_BY_GENRE: dict[str, tuple[str, ...]] = {
    "Action": ("explosion", "explosive", "shootout", "gunfight", "car chase", "chase", "fight scene",
               "fighting", "fistfight", "brawl", "karate", "samurai", "ninja", "stunt", "adrenaline",
               "badass", "fast paced", "sword fight", "swordplay", "bodyguard", "mercenary",
               "commando", "gun", "guns blazing", "dogfight"),
    "Adventure": ("pirate", "treasure", "quest", "expedition", "jungle", "explorer", "exploration",
                  "lost city", "shipwreck", "safari", "voyage", "epic journey", "dinosaur",
                  "castaway", "desert island"),
    "Children's": ("kid", "family", "little one", "toddler", "little kid", "young kid", "muppet",
                   "puppet", "disney", "babysitting", "cute animals", "talking animal"),
    "Comedy": ("funny", "funnier", "funniest", "hilarious", "humor", "humour", "humorous", "laugh",
               "laughing", "laughs", "goofy", "silly", "witty", "laugh out loud", "giggle", "chuckle",
               "joke", "gag", "amusing", "wacky", "zany", "deadpan",
               "raunchy", "make me laugh", "comic relief", "absurd humor"),
    "Crime": ("mob", "cop", "police", "robbery", "bank robbery", "criminal", "hitman", "con artist",
              "con man", "drug dealer", "drug lord", "cartel", "prison", "jail", "convict", "inmate",
              "prison break", "gang", "yakuza", "the mob", "crook", "thief", "thieves", "burglar",
              "money laundering", "underworld"),
    "Drama": ("sad", "emotional", "make me cry", "heartbreaking", "moving", "touching", "poignant",
              "serious", "cry", "tearful", "life story", "biography",
              "heart wrenching", "gut wrenching", "bittersweet"),
    "Fantasy": ("magic", "magical", "wizard", "witch", "witchcraft", "dragon", "elf", "elves",
                "sorcery", "sorcerer", "mythical", "mythology", "myth", "enchanted", "unicorn",
                "mermaid", "fairy", "fairies", "troll", "knight", "medieval", "kingdom", "spell",
                "genie", "legend", "mythical creatures"),
    "Film-Noir": ("femme fatale", "private eye", "private detective", "private investigator",
                  "gumshoe", "1940s detective", "shadowy"),
    "Horror": ("scary", "scarier", "scariest", "scare", "frightening", "frighten", "terrifying",
               "creepy", "spooky", "gore", "gory", "haunted", "haunting", "ghost", "demon", "monster",
               "possession", "possessed", "serial killer", "bloody", "freaky", "nightmare", "chilling",
               "eerie", "macabre", "supernatural", "occult", "poltergeist", "cannibal", "satanic",
               "devil", "evil spirit", "blood and guts", "scare me", "keep me up at night"),
    "Musical": ("singing", "song", "broadway", "dance number", "dancing", "dance", "ballet", "opera",
                "sing", "choreography", "showtunes"),
    "Mystery": ("detective", "sleuth", "puzzle", "clue", "unsolved", "investigation", "investigator",
                "sherlock", "sherlock holmes", "poirot", "enigma", "mysterious",
                "solve the crime", "solving a murder", "who did it"),
    "Romance": ("in love", "date night", "date movie", "falling in love", "lovers", "relationship",
                "love triangle", "wedding", "valentines", "valentines day", "first date", "soulmate",
                "kiss", "kissing", "smooch", "passion", "passionate", "lovey dovey", "mushy", "sappy",
                "swoon", "courtship", "affair", "love affair", "for couples", "romantically"),
    "Sci-Fi": ("space", "outer space", "alien", "robot", "time travel", "time traveling",
               "time machine", "futuristic", "future", "dystopia", "dystopian", "spaceship",
               "starship", "galaxy", "galactic", "extraterrestrial", "android", "cyborg", "astronaut",
               "ufo", "martian", "alien planet", "interstellar", "post apocalyptic", "apocalypse", "mutant",
               "clone", "cloning", "artificial intelligence", "virtual reality", "parallel universe",
               "space battle", "alien invasion", "mad scientist", "laser", "sf"),
    "Thriller": ("thrilling", "tense", "spy", "spies", "conspiracy", "espionage", "twisty",
                 "hitchcockian", "secret agent", "undercover", "assassin", "kidnapping",
                 "hostage", "stalker", "paranoia", "paranoid", "manhunt", "on the run", "cia", "fbi",
                 "double cross", "plot twist", "gripping", "intense", "thrill ride"),
    "War": ("soldier", "military", "battle", "battlefield", "army", "combat", "vietnam", "d day",
            "trench", "navy", "submarine", "marines", "troops", "nazi", "holocaust", "fighter pilot",
            "bomber", "prisoner of war", "pow", "civil war", "korean war", "resistance fighter",
            "the front lines", "front line", "napoleonic", "war hero"),
    "Western": ("cowboy", "gunslinger", "gunfighter", "outlaw", "sheriff", "frontier",
                "cowboys and indians", "ranch", "saloon", "stagecoach", "cattle drive", "rodeo",
                "bounty hunter", "wagon train", "homesteader"),
}
# Words for several genres at once.
MULTI: dict[str, tuple[str, ...]] = {
    "romcom": ("Romance", "Comedy"), "rom com": ("Romance", "Comedy"),
    "romantic comedy": ("Romance", "Comedy"), "horror comedy": ("Horror", "Comedy"),
    "dramedy": ("Comedy", "Drama"), "buddy cop": ("Action", "Comedy"),
    "family drama": ("Drama",),  # a drama about a family, not a children's film
    "space western": ("Sci-Fi", "Western"), "musical comedy": ("Musical", "Comedy"),
}


def _by_phrase(by_genre: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for genre, phrases in by_genre.items():
        for text in phrases:
            table[text] = table.get(text, ()) + (genre,)
    return table


STRONG: dict[str, tuple[str, ...]] = {**_by_phrase(_STRONG_BY_GENRE), **MULTI}
WEAK: dict[str, tuple[str, ...]] = _by_phrase(_WEAK_BY_GENRE)

# A young audience asks for a children's film: "my son is 6", "for a 7 year old".
CHILD_WORDS: tuple[str, ...] = (
    "son", "daughter", "kid", "kids", "child", "children", "boy", "girl", "nephew", "niece",
    "grandson", "granddaughter", "grandkids", "grandchildren", "brother", "sister", "toddler",
)
AGE_WORDS: tuple[str, ...] = ("year old", "years old", "yr old", "yrs old", "yo", "yrs", "year olds")
CHILD_AGE_MAX = 12  # years

# --------------------------------------------------------------------------- negation
# Phrases that open an exclusion scope: what follows them, up to the end of the clause, is
# not wanted ("no horror or thrillers", "anything but westerns", "I can't stand musicals").
NEGATION_CUES: tuple[str, ...] = (
    "no", "not", "nothing", "none", "none of", "zero", "without", "without any", "except",
    "except for", "excluding", "but not", "anything but", "everything but", "other than",
    "rather than", "instead of", "nor", "neither", "minus", "no more", "not another",
    "hate", "hated", "dislike", "detest", "loathe", "cant stand", "cannot stand", "can not stand",
    "cant handle", "cannot handle", "cant do", "dont like", "do not like", "didnt like",
    "dont want", "do not want", "dont need", "dont love", "dont enjoy", "dont care for",
    "dont feel like", "dont do", "not into", "not a fan of", "not a big fan of", "not big on", "not interested in",
    "not in the mood for", "not feeling", "im not feeling", "no interest in", "rather not",
    "id rather not", "avoid", "skip", "pass on", "ill pass on", "steer clear of", "keep away from",
    "stay away from", "leave out", "hold the", "sick of", "tired of", "bored of", "bored with",
    "fed up with", "had enough of", "enough of", "enough with", "done with", "im done with",
    "im over", "too scared of", "scared of", "afraid of", "spare me", "allergic to",
    "never again", "dont show", "dont show me", "dont suggest", "dont recommend", "dont give me",
    "dont include", "dont pick", "do not show", "do not suggest", "do not recommend",
    "please dont", "isnt", "arent", "less", "free of", "a break from", "break from",
    "a change from", "a rest from", "away from", "get away from",
)
# May stand inside a negation cue without breaking it: "I don't *really* like", "not *really* into".
INTENSIFIERS: tuple[str, ...] = (
    "really", "particularly", "especially", "much", "actually", "honestly", "totally", "even",
    "exactly", "generally", "usually", "always", "truly", "absolutely", "seriously",
)
# Look like negation but do not exclude what follows.
NEGATION_NOOPS: tuple[str, ...] = (
    "dont mind", "wouldnt mind", "not only", "not sure", "no idea", "no problem", "no worries",
    "not bad", "no matter", "no doubt", "dont care", "nothing but", "not just", "dont know",
    "not seen", "havent seen", "never seen", "no thanks", "not necessarily", "no preference",
    "not picky", "im not picky", "no particular", "not too picky", "why not",
    # a comment on a film already seen, not an exclusion: "it wasn't scary", "it's not really funny"
    "its not", "it is not", "it was not", "it wasnt", "it isnt", "this is not", "this isnt",
    "this was not", "they were not", "they werent", "wasnt", "werent", "not as much as",
    "not so much as",
)
# "less" / "not too": they soften ("less romance"), so they only exclude genre names, never
# descriptions ("less sad" is a mood, not a ban on dramas).
SOFT_NEGATION_CUES: tuple[str, ...] = (
    "less", "not too", "not so", "not very", "not overly", "not that",
    "not super", "a bit less", "a little less",
)
# End an exclusion scope (besides punctuation): "no horror but a thriller", "no gore, just suspense".
SCOPE_BREAKERS: tuple[str, ...] = (
    "but", "though", "although", "however", "yet", "instead", "just", "only", "maybe", "perhaps",
    "preferably", "rather", "prefer", "with", "something", "i want", "i like", "i love", "id like",
    "give me", "show me", "lots of", "plenty of", "a lot of", "more", "and i", "so", "because",
    "cause", "since", "please", "pls", "from", "how about", "what about", "ideally", "mostly",
    "mainly", "especially",
)
# After a genre mention in the same clause, these turn it into an exclusion ("westerns are boring").
POST_NEGATIONS: tuple[str, ...] = (
    "are boring", "is boring", "bore me", "are not my thing", "is not my thing", "arent my thing",
    "isnt my thing", "not my thing", "not for me", "are not for me", "is not for me", "suck",
    "sucks", "are overrated", "is overrated", "are lame", "is lame", "are the worst",
    "is the worst", "get on my nerves", "are terrible", "is terrible", "not my cup of tea",
    "is a no go", "are a no go", "no go", "is out", "are out", "is off the table",
    "are off the table", "is off limits", "are off limits", "is a hard pass", "are a hard pass",
    "hard pass", "are not allowed", "is not allowed", "annoy me", "is annoying",
    "are annoying", "makes me sick", "is too much", "are too much", "nope", "are for kids",
    "is for kids", "are childish", "is childish", "are cheesy", "is cheesy", "are dumb", "is dumb",
    "are stupid", "is stupid", "are silly", "is silly", "got old", "are played out",
)
# A change of mind inside one message: only what follows the last one counts
# ("show me thrillers, no wait, comedies").
CORRECTION_CUES: tuple[str, ...] = (
    "no wait", "wait no", "scratch that", "on second thought", "on second thoughts", "never mind",
    "nevermind", "actually no", "i mean", "i meant", "sorry i meant", "correction", "make that",
    "or rather", "let me rephrase",
)
# The same, standing after a comma or question mark: "musicals? no thanks".
POST_REJECTIONS: tuple[str, ...] = (
    "no thanks", "no thank you", "nope", "hard pass", "not for me", "no way", "not my thing",
    "no no", "pass", "please no", "not interested",
)

# --------------------------------------------------------------------------- request context
MOVIE_NOUNS: tuple[str, ...] = (
    "movie", "film", "flick", "picture", "pic", "cinema", "feature", "title", "show", "series",
    "one", "stuff", "something", "anything", "option", "pick", "recommendation",
    "suggestion", "watch", "idea",
)
REQUEST_CUES: tuple[str, ...] = (
    "recommend", "recommended", "suggest", "suggestions", "watch", "watching", "see", "show me",
    "find", "find me", "give me", "want", "wanna", "looking for", "in the mood", "feel like",
    "got any", "any good", "something", "anything", "nothing", "stuff", "pick", "picks", "options",
    "ideas", "need", "need a", "how about", "what about", "could use", "id like", "i would like",
    "lets see", "play", "stream", "bored", "surprise me", "whatever", "idk", "dunno", "any",
    "searching for", "search for", "help me find",
)
# Words that make a message a statement about something else rather than a bare phrase:
# weak genre words in "my cat is so funny" do not count.
PREDICATE_MARKERS: tuple[str, ...] = (
    "is", "are", "am", "was", "were", "im", "youre", "hes", "shes", "its", "theyre", "ive",
    "thats", "whats", "tell", "say", "said", "agree", "think", "be", "been", "do", "does", "did",
    "have", "has", "had", "can", "cant", "could", "would", "should", "i", "you", "he", "she",
    "we", "they", "my", "your", "our", "their",
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
    "between", "looks", "look", "sounds", "seems", "seem", "awesome", "perfect", "interesting",
    "amazing", "cool", "fun", "nice", "solid", "decent", "worth", "watched", "seen", "saw", "u",
    "ur", "smth", "sth", "plus", "around", "during", "within", "etc", "else", "ok",
    "bye", "goodbye", "cya", "oh", "ah", "ahh", "wow", "aw", "aww", "ooh", "omg", "meh", "yay", "hey", "hm", "hmmm", "ha",
    "searching", "search", "lately", "recently", "wondering", "wonder", "hoping", "hope", "thinking",
    "think", "guess", "suppose", "help", "know", "check", "later", "soon", "currently",
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
# ("a new movie" is one new to the person, not an era)
RECENT_WORDS: tuple[str, ...] = (
    "recent", "newer", "newest", "latest", "modern", "new releases", "more recent", "recent years",
    "of recent", "newer ones", "new release",
)
# A bare year is an era only after one of these ("from 1994", "late 2017", "released in 1995"),
# in a comparison (above), or before a film noun ("a 1994 comedy").
YEAR_CUES: tuple[str, ...] = (
    "from", "circa", "around", "between", "early", "late", "mid", "year", "made in", "released in",
    "out in", "films of", "movies of", "came out in", "come out in", "during", "in the year",
)
# "1970 to 1980", "1980 or 1981": a second year linked to a counted one
YEAR_LINKS: tuple[str, ...] = ("to", "and", "or", "through", "till", "until", "thru")

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
# "5 stars", "2 hours": numbers that are not how many films to show
NOT_COUNTED_UNITS: tuple[str, ...] = (
    "star", "stars", "hour", "hours", "hr", "hrs", "minute", "minutes", "min", "mins", "percent",
    "year", "years", "yr", "yrs", "yo", "times", "dollars", "bucks",
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

# --------------------------------------------------------------------------- titles a person has seen or rejects
# A film named after one of these is one the person has seen: never shown again ("I've seen Titanic").
SEEN_CUES: tuple[str, ...] = (
    "ive seen", "i have seen", "have seen", "already seen", "already watched", "have watched",
    "ive watched", "i have watched", "ive already seen", "have already seen", "seen", "weve seen",
    "we have seen", "ive already watched",
)
# ... and after one of these the person does not know it: no reference either way.
UNSEEN_CUES: tuple[str, ...] = (
    "havent seen", "have not seen", "never seen", "not seen", "havent watched", "have not watched",
    "never saw", "didnt see", "did not see", "didnt watch", "did not watch",
    "never watched", "never heard of", "not heard of", "havent heard of", "not yet seen",
)
# Said of a film in the same sentence, these make a film the person has seen one they liked:
# taste to go by, though never shown again ("I've seen Fargo, loved it"). Not "okay" or "fine".
PRAISE_CUES: tuple[str, ...] = (
    "love", "loved", "loves", "loving", "liked", "i like it", "i like them", "i like that", "i like those",
    "and like it", "and like them",
    "enjoy", "enjoyed", "enjoys", "great", "good", "awesome", "amazing", "fantastic", "excellent",
    "brilliant", "wonderful", "favorite", "favourite", "favorites", "favourites", "best", "classic",
    "masterpiece", "incredible", "perfect", "hilarious", "fun", "cool", "a fan of", "big fan",
    "huge fan", "really liked", "really enjoyed",
)
# Open a clause whose genre words are allowed rather than asked for: "doesn't have to be a comedy".
HEDGE_CUES: tuple[str, ...] = (
    "doesnt have to be", "does not have to be", "dont have to be", "doesnt need to be",
    "does not need to be", "dont need it to be", "not necessarily", "need not be", "neednt be",
    "doesnt matter if its", "doesnt have to be a", "no need for it to be",
)
# Relative refinements (``Intent.adjust``). keep_genre: the words still ask for their genre
# ("funnier" is still a comedy); the others are a direction, not a genre ("too scary").
ADJUSTMENTS: dict[str, tuple[str, bool]] = {
    "darker": ("darker", False), "more dark": ("darker", False), "grittier": ("darker", False),
    "more serious": ("darker", False), "bleaker": ("darker", False), "heavier": ("darker", False),
    "lighter": ("lighter", False), "lighthearted": ("lighter", False), "light hearted": ("lighter", False),
    "more lighthearted": ("lighter", False), "less dark": ("lighter", False), "not as dark": ("lighter", False),
    "not so dark": ("lighter", False), "too dark": ("lighter", False), "less serious": ("lighter", False),
    "not as serious": ("lighter", False), "too serious": ("lighter", False), "more upbeat": ("lighter", False),
    "more cheerful": ("lighter", False), "happier": ("lighter", False), "too sad": ("lighter", False),
    "less sad": ("lighter", False), "too scary": ("lighter", False), "not too scary": ("lighter", False),
    "less scary": ("lighter", False), "not as scary": ("lighter", False), "not so scary": ("lighter", False),
    "too intense": ("lighter", False), "less intense": ("lighter", False), "too creepy": ("lighter", False),
    "funnier": ("funnier", True), "more funny": ("funnier", True), "more humor": ("funnier", True),
    "more humour": ("funnier", True), "more laughs": ("funnier", True), "more comedy": ("funnier", True),
    "more humorous": ("funnier", True),
    "less violent": ("less_violent", False), "less violence": ("less_violent", False),
    "not as violent": ("less_violent", False), "not so violent": ("less_violent", False),
    "too violent": ("less_violent", False), "not too violent": ("less_violent", False),
    "less gore": ("less_violent", False), "less gory": ("less_violent", False), "too gory": ("less_violent", False),
    "not too gory": ("less_violent", False), "too bloody": ("less_violent", False), "less blood": ("less_violent", False),
    "less bloody": ("less_violent", False), "nonviolent": ("less_violent", False), "non violent": ("less_violent", False),
    "something different": ("different", False), "different kind": ("different", False),
    "different type": ("different", False), "different genre": ("different", False),
    "change of pace": ("different", False), "something new and different": ("different", False),
    "mix it up": ("different", False),
}
# Slots a person lets go of: "any year is fine", "no matter the genre" (regular expressions on the
# normalised words, apostrophes dropped).
RELAX_PATTERNS: dict[str, tuple[str, ...]] = {
    "genres": (
        r"\b(any|all|every) (genre|genres|type|types|kind|kinds|sort|sorts)\b",
        r"\bno matter (the|what|which) (genre|type|kind)\b",
        r"\b(dont|do not|doesnt|does not) (really )?(care|matter)( about| what| which)? (the )?(genre|type|kind)\b",
        r"\b(genre|type|kind) (doesnt|does not|dont) matter\b",
        r"\bopen to any( genre| type| kind)?\b",
    ),
    "years": (
        r"\b(any|every) (year|years|time period|period|era|decade|age|release date)\b",
        r"\b(past|old|older) or (present|new|newer|recent)\b",
        r"\bno matter (the|what|which|how) (year|era|decade|old)\b",
        r"\b(dont|do not|doesnt|does not) (really )?(care|matter)( about| what| which| how)? (the )?(year|era|decade|old)\b",
        r"\b(year|era|decade|age) (doesnt|does not|dont) matter\b",
        r"\b(old|older) (ones |movies |films )?(are|is) (fine|ok|okay|good) too\b",
        r"\b(new|newer) (ones |movies |films )?(are|is) (fine|ok|okay|good) too\b",
    ),
    "all": (r"\bno preference\b", r"\bopen to anything\b", r"\bwhatever you (think|like|recommend)\b"),
}
# Say that this turn's genres take the place of the standing ones.
REPLACE_CUES: tuple[str, ...] = (
    "instead", "actually", "rather", "make it", "change it to", "switch to", "lets do",
    "on second thought",
)
# Ask for more of the same in a chatty message: "I've seen it. Any others?"
MORE_REQUESTS: tuple[str, ...] = (
    "any other", "any others", "any more", "anymore", "what else", "anything else", "another one",
    "other suggestions", "other ideas", "other recommendations", "more suggestions", "more ideas",
    "more recommendations", "others", "something else", "more similar", "any other ones",
    "more options", "another suggestion", "one more", "some more", "another",
)
# Open a request of its own when nothing stands yet: with one, a message read alone is a new
# request even if it looks like an adjustment ("I'm looking for some older movies").
OPENING_CUES: tuple[str, ...] = (
    "watch", "watching", "find", "suggestions", "recommendations", "any good", "could use",
    "searching for", "search for", "im after", "in search of",
)
# A capitalised word with one of these opens a new clause even without punctuation
# ("I don't like action Do you know a comedy?"): negation stops there.
CLAUSE_OPENERS: tuple[str, ...] = (
    "do", "does", "did", "can", "could", "would", "will", "any", "anything", "what", "which", "how",
    "is", "are", "have", "has", "i", "im", "ive", "id", "maybe", "but", "so", "please", "also",
    "thanks", "thank", "hi", "hello", "its", "thats", "it", "they", "we", "my", "perhaps", "just",
)
# Words around a name that say it is a person: "with Tom Hanks", "a Richard Gere film".
PERSON_CUES_BEFORE: tuple[str, ...] = (
    "with", "starring", "directed by", "by", "actor", "actress", "director", "stars", "featuring",
)
PERSON_CUES_AFTER: tuple[str, ...] = (
    "film", "films", "movie", "movies", "flick", "flicks", "type", "style", "fan", "is", "was",
    "always", "in", "made", "makes", "plays", "played", "stars", "directed",
)
# Capitalised words that are no names: days, months, holidays, greetings.
CALENDAR_WORDS: tuple[str, ...] = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
    "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "christmas", "xmas", "easter", "halloween", "thanksgiving", "merry",
    "happy", "new", "year", "valentines", "eve", "holidays", "netflix", "hulu", "amazon", "prime",
    "hbo", "disney", "pixar", "marvel", "dc", "youtube", "imdb", "oscar", "oscars",
)
# Greetings and small talk: never off-topic.
SMALL_TALK: tuple[str, ...] = (
    "how are you", "how are u", "how r u", "hows it going", "how is it going", "how you doing",
    "how are you doing", "whats up", "sup", "how about you", "and you", "yourself", "how have you been",
    "hows your day", "how is your day", "how was your day", "you",
)
# The commonest English words: a message of several words with almost none of them is not English.
ENGLISH_COMMON: tuple[str, ...] = tuple("""
the a an i you he she it we they me my your our this that these those to of and or but in on at
for from with by about as is are was were be been am do does did have has had can could would
will should not no yes what which who how why when where there here some any all one more like
just so if then than too very really please thanks thank hi hello hey want need looking look
find watch watching seen see movie movies film films something anything good great im its dont
ive id youre thats whats get got know think show give recommend suggest
""".split())
# Descriptions common enough to be typed in a hurry: their typos are corrected too ("scray" -> scary).
TYPO_WEAK: tuple[str, ...] = ("scary", "funny", "romantic", "animated", "hilarious", "creepy", "spooky")
