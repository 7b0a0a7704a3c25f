"""Offline rule-based refiner: raw Chinese/English/mixed text -> English prompt + motion tags.

It is the embedded default and the LLM refiner's fallback, so it needs no network, never raises on ordinary
input and answers in a few milliseconds. The method is deliberately simple and predictable:

1. Split the text into clauses at punctuation.
2. Find camera language (pans, zooms, slow motion, ...) with regular expressions and cut it out of the
   clause, so that "镜头向左" is read as a camera move and not as the subject moving left.
3. Read what is left. An all-English clause is kept as the user wrote it (only tidied): the video model
   reads English, and rewriting words we do not know would lose them. A clause with Chinese in it is
   segmented with jieba (plus our lexicon) and rebuilt as "[subject] [action] [manner] [place]". The
   curated lexicon wins where it has a word (it knows camera language and picks the video-friendly sense);
   CC-CEDICT (`dictionary.py`) translates the rest, as a noun or a verb by the word's place in the clause,
   and `notes` lists what it translated. Only words neither knows are left out, and `dropped` names them.
4. Append the camera phrases: "..., camera panning to the left, slow motion."

That is the "short" form, for models whose text encoder reads a few dozen tokens. A model whose spec asks for the
"detailed" form (a text encoder that reads hundreds of tokens and follows 80-120-word prompts) gets the same reading written out as
a structured paragraph: the subject and its action, the manner and tempo of the motion (from the tempo tags), the
camera (from the camera tags; "the camera stays still" when none was asked for), then a sentence keeping the look
of the image. Same tags, same content words, within the spec's word budget.

Nothing is added that the user did not say: no weather, light, style or objects.

Its modules, in the order a text goes through them: `camera` (camera language; the advisor's `camera_moves`),
`text` (which characters are Chinese), `lexicon` (the curated words, read from `lexicon.json`), `segment`
(jieba and the lexicon's tokens), `parse` (the clause parser), `render` (the short form) and `detailed` (the
detailed form), and `refiner` (`RuleRefiner`, which runs them). Importing this package loads none of them, so
asking for `camera_moves` does not load the parser.
"""
