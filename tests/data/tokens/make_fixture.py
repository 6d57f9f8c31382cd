#!/usr/bin/env python3
"""Writes corpus.json: reference token counts from Python tiktoken for a fixed corpus of tricky text.

promptmill counts prompt tokens with bpe-openai (and tiktoken-rs for legacy encodings; see
crates/core/src/tokens.rs); this fixture pins those counts to what OpenAI's own tokenizer library says, so a
change of either crate's version, vocabulary, split regex or merge shows up as a failing test
(crates/core/src/tokens/fixture_tests.rs) instead of a quietly wrong TPM budget. The corpus includes long pieces
(10 KB of one character, a 50 KB base64 blob, 20 KB of minified JavaScript, a long URL, CJK without
spaces, runs of emoji ZWJ sequences), where a linear merge and tiktoken's quadratic one could part.

Run once, commit the output, and rerun only when the corpus changes or a tiktoken release should be
re-checked:

    pip install tiktoken
    TIKTOKEN_CACHE_DIR=/path/to/tiktoken-cache python3 tests/data/tokens/make_fixture.py

Counting rules:
- Strings: ``len(enc.encode(text, disallowed_special=()))``. Special-token text such as
  ``<|endoftext|>`` inside content is ordinary text, as it is for OpenAI's chat endpoints and for
  promptmill's ``encode_ordinary``.
- Chat requests: the OpenAI cookbook's ``num_tokens_from_messages`` ("How to count tokens with
  tiktoken"): 3 per message, plus the tokens of every value of the message (the role string
  included), plus 1 per ``name``, plus 3 per request for priming the reply. For a content-parts
  array only the ``text`` parts are counted.

The corpus is fixed and the output deterministic: no randomness, no clock.
"""

import base64
import hashlib
import json
import os
import unicodedata

import tiktoken

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus.json")
ENCODINGS = ("o200k_base", "cl100k_base")
# The models whose encodings the chat expectations use; promptmill picks the encoding by model name.
CHAT_MODELS = {"gpt-4o": "o200k_base", "gpt-4": "cl100k_base"}


def long_paragraph():
    """About 5 KB of ordinary English prose with punctuation, numbers and the odd quotation."""
    sentences = [
        "The committee met on Tuesday, 14 March 2023, to review the quarterly figures.",
        "Revenue rose by 12.5% to $4,317,209.88, while costs fell slightly (from 2,904 to 2,871 units).",
        "\"We're not out of the woods yet,\" the chair said; \"but it's a start, and I'd call it progress.\"",
        "Several members asked whether the forecast - which assumed a 3-4% growth rate - was realistic.",
        "Others pointed out that last year's estimate had been off by nearly a third, in both directions.",
        "The discussion then turned to hiring: 17 open positions, of which 9 are engineering roles.",
        "A short break followed; coffee was served at 10:45 and the session resumed at 11:00 sharp.",
        "In the afternoon, the group reviewed the draft policy on remote work, section by section.",
        "Clause 4(b) drew the most comments, mostly about equipment allowances and their tax treatment.",
        "By 16:30 the minutes were approved, with two abstentions and no votes against.",
    ]
    text = []
    size = 0
    i = 0
    while size < 5000:
        s = sentences[i % len(sentences)]
        text.append(s)
        size += len(s) + 1
        i += 1
    return " ".join(text)


def pseudo_random_bytes(n, seed):
    """n bytes of a SHA-256 chain: looks random, is the same on every run."""
    out = bytearray()
    block = seed.encode()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def minified_js(size):
    """About `size` bytes of minified JavaScript: no spaces, no newlines, varied identifiers."""
    parts = []
    total = 0
    i = 0
    while total < size:
        part = (
            f"function _{i:x}(a,b){{var c=a.map(function(x){{return x*{i % 7 + 2}+b}})"
            f".filter(function(y){{return y>{i % 13}&&y!==null}});"
            f"if(c.length>{i % 5}){{c=c.slice(0,{i % 9 + 1})}}else{{c.push(\"k{i}\")}};"
            f"return{{id:{i},v:c,ok:!0,s:'x{i:x}'+c.join(',')}}}}"
        )
        parts.append(part)
        total += len(part)
        i += 1
    return "".join(parts)[:size]


def long_pieces():
    """Text whose pieces (the split regex's matches) are long: where a quadratic merge is slow."""
    c = []
    c.append(("long_repeated_char_10kb", "a" * 10_000))
    c.append(("long_repeated_space_10kb", " " * 10_000))
    c.append(("long_repeated_cjk_char_3k", "的" * 3_000))
    c.append(("long_base64_50kb", base64.b64encode(pseudo_random_bytes(37_500, "base64")).decode()))
    c.append(("long_minified_js_20kb", minified_js(20_000)))
    url = "https://example.com/api/v2/search?" + "&".join(
        f"q{i}={pseudo_random_bytes(12, f'url{i}').hex()}" for i in range(60)
    ) + "#" + "section-" * 20
    c.append(("long_url", url))
    cjk = (
        "人工智能正在改变世界我们今天去公园散步天气非常好机器学习与自然语言处理是信息科学的重要领域"
        "東京タワーは千九百五十八年に完成しましたひらがなとカタカナと漢字を混ぜて書きます"
        "안녕하세요저는한국어를공부하고있습니다날씨가좋네요"
    )
    c.append(("long_cjk_no_spaces", cjk * 20))
    zwj = "👨‍👩‍👧‍👦👩🏽‍💻🧑🏿‍🚀👨‍🔬🏳️‍🌈🏴‍☠️👩‍❤️‍💋‍👨🧑‍🤝‍🧑"
    c.append(("long_emoji_zwj_run", zwj * 60))
    c.append(("long_digits_5kb", "".join(str(b % 10) for b in pseudo_random_bytes(5_000, "digits"))))
    c.append(("long_mixed_scripts_no_spaces", ("Helloмир世界γειά🌍مرحبا" * 100)))
    return c


def cases():
    c = []

    def add(name, text):
        c.append((name, text))

    # Trivial edges.
    add("empty", "")
    add("single_space", " ")
    add("single_newline", "\n")
    add("plain_english", "The quick brown fox jumps over the lazy dog.")

    # CJK.
    add("chinese_simplified", "我们今天去公园散步，天气非常好。人工智能正在改变世界。")
    add("chinese_traditional", "機器學習與自然語言處理是資訊科學的重要領域。")
    add("japanese_mixed", "東京タワーは1958年に完成しました。ひらがなとカタカナと漢字を混ぜて書きます。")
    add("japanese_halfwidth_katakana", "ｶﾀｶﾅ ﾃｽﾄ ｱｲｳｴｵ")
    add("korean_hangul", "안녕하세요, 저는 한국어를 공부하고 있습니다. 날씨가 좋네요!")
    add("fullwidth_ascii", "ＡＢＣ１２３！？　ｆｕｌｌｗｉｄｔｈ")

    # Emoji: ZWJ sequences, skin tones, flags, keycaps, variation selectors.
    add("emoji_basic", "I love pizza 🍕 and coffee ☕️!")
    add("emoji_zwj_family", "family: 👨‍👩‍👧‍👦 and 👩‍👩‍👦")
    add("emoji_zwj_professions", "👩🏽‍💻 🧑🏿‍🚀 👨‍🔬 🏳️‍🌈 🏴‍☠️")
    add("emoji_skin_tones", "👋👋🏻👋🏼👋🏽👋🏾👋🏿")
    add("emoji_flags", "🇺🇸🇯🇵🇩🇪🇫🇷🇧🇷🇮🇳 🏴󠁧󠁢󠁳󠁣󠁴󠁿")
    add("emoji_keycaps", "1️⃣ 2️⃣ #️⃣ *️⃣")
    add("emoji_only_run", "😀😃😄😁😆😅🤣😂🙂🙃😉😊😇")

    # Whitespace: runs of spaces between words (1..20), tabs, newlines, CRLF, trailing and leading.
    for n in range(1, 21):
        add(f"spaces_between_words_{n:02}", "word" + " " * n + "word")
    add("trailing_spaces", "trailing spaces   ")
    add("leading_spaces", "     leading spaces")
    add("only_spaces_100", " " * 100)
    add("tabs_mixed", "a\tb\t\tc\t\t\td \t e\t")
    add("newline_runs", "line1\nline2\n\nline3\n\n\n\nline4\n")
    add("crlf_lines", "first line\r\nsecond line\r\n\r\nthird\r\n")
    add("mixed_whitespace_run", "x \t\n \r\n\t  \n y")
    add("newlines_only", "\n\n\n\n\n\n\n\n")
    add("nbsp_and_unicode_spaces", "non\u00a0breaking\u2003em\u2009thin\u3000ideographic")

    # Special-token text inside content: counted as ordinary text.
    add("endoftext_alone", "<|endoftext|>")
    add("endoftext_in_sentence", "Hello<|endoftext|>world and <|endoftext|> again")
    add("fim_tokens", "<|fim_prefix|>def f():<|fim_suffix|>    return 1<|fim_middle|>")
    add("chat_markup_tokens", "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user")
    add("endofprompt_and_lookalikes", "<|endofprompt|> <|endoftext| <endoftext|> <||> <|>")

    # Code.
    add(
        "code_rust",
        "fn main() {\n    let v: Vec<u32> = (1..=10).map(|x| x * x).collect();\n"
        '    println!("{:?}", v);\n}\n',
    )
    add(
        "code_python",
        "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n"
        "print([fib(i) for i in range(10)])\n",
    )
    add(
        "code_json",
        '{\n  "name": "promptmill",\n  "version": "0.1.0",\n  "tags": ["cli", "openai"],\n'
        '  "nested": {"a": 1, "b": [true, false, null], "c": -3.5e10}\n}',
    )
    add(
        "code_html",
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Test</title></head>\n'
        '<body>\n  <div class="x" id=\'y\'>&amp; &lt;tag&gt; &#x1F600;</div>\n</body>\n</html>\n',
    )
    add("code_minified_js", "function(a,b){return a.map(x=>x*2).filter(y=>y>b)||[]}")

    # Numbers.
    add("digit_run_50", "12345678901234567890123456789012345678901234567890")
    add("numbers_mixed", "3.14159 -42 1,000,000 1e-9 0x1F 0b1010 007 2024-01-01T12:00:00Z")
    add("unicode_digits", "Arabic-Indic ٠١٢٣٤٥٦٧٨٩ Devanagari ०१२३४५६७८९ fullwidth ０１２３")

    # Contractions in various cases.
    add("contractions_lower", "it's we're they'll I'm you've he'd don't")
    add("contractions_upper", "IT'S WE'RE THEY'LL I'M YOU'VE HE'D DON'T")
    add("contractions_mixed_case", "It'S We'Re They'lL i'M You'Ve He'D Don'T")
    add("contractions_curly_quote", "it’s we’re they’ll")
    add("apostrophes_alone", "' '' ''' 's 'S 'll")

    # Right-to-left and complex scripts.
    add("arabic", "مرحبا بالعالم، كيف حالك اليوم؟")
    add("hebrew", "שלום עולם, מה שלומך היום?")
    add("devanagari", "नमस्ते दुनिया, आप कैसे हैं? हिन्दी भाषा")
    add("thai", "สวัสดีครับ ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ")
    add("bidi_mixed", "The word שלום means peace; مرحبا means hello.")

    # Combining marks and zero-width characters.
    add(
        "combining_diacritics",
        "e\u0301 a\u0300 n\u0303 o\u0308 Z\u0351\u0352\u0353\u0354a\u0355\u0356l\u0357g\u0358o",
    )
    add("precomposed_vs_combining", "café cafe\u0301 naïve nai\u0308ve")
    add("zero_width_chars", "zero\u200bwidth\u200cnon\u200djoiner\u2060word\ufeffbom")
    add("variation_and_bidi_controls", "text\ufe0f \u202ereversed\u202c \u200eltr\u200f")

    # Very long words.
    add("long_word_repeated_letter", "a" * 1000)
    add(
        "long_word_german",
        "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft",
    )
    add("long_word_no_spaces", "supercalifragilisticexpialidocious" * 20)
    add("long_punctuation_run", "!?" * 100 + "..." * 50)

    # Mixed scripts and URLs.
    add("mixed_scripts", "Hello 世界 Привет мир γειά σου κόσμε 🌍 مرحبا")
    add(
        "cyrillic_greek",
        "Съешь же ещё этих мягких французских булок. Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    )
    add("urls", "See https://example.com/path/to/page?query=a%20b&x=1#frag and http://localhost:8080/v1/chat")
    add("email_and_paths", "mail me@example.org; C:\\Users\\me\\file.txt; /usr/local/bin/promptmill")
    add("markdown", "# Title\n\n- **bold** _it_ `code`\n- [link](http://x.y)\n\n```rust\nlet x = 1;\n```\n")

    add("paragraph_5kb", long_paragraph())
    for name, text in long_pieces():
        add(name, text)
    return c


def chats():
    """Chat requests: system, user and assistant turns; one with `name`, one with content parts."""
    return [
        {
            "name": "system_user",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is the capital of France?"},
            ],
        },
        {
            "name": "system_user_assistant_user",
            "messages": [
                {"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": "Colour of the sky?"},
                {"role": "assistant", "content": "Blue."},
                {"role": "user", "content": "And of grass? 草は何色？ 🌱"},
            ],
        },
        {
            "name": "with_name",
            "messages": [
                {"role": "system", "content": "You are a translator."},
                {"role": "user", "name": "example_user", "content": "Translate: good morning"},
                {"role": "assistant", "name": "example_assistant", "content": "Bonjour"},
                {"role": "user", "content": "Translate: good night"},
            ],
        },
        {
            "name": "content_parts",
            "messages": [
                {"role": "system", "content": "Describe what you are given."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Here are two parts: "},
                        {"type": "text", "text": "über 世界 <|endoftext|> 👩🏽‍💻"},
                    ],
                },
            ],
        },
        {
            "name": "special_tokens_and_whitespace",
            "messages": [
                {"role": "system", "content": "<|im_start|>system\n  be terse  <|im_end|>"},
                {"role": "user", "content": "line one\r\n\r\n\tline two      \n"},
                {"role": "assistant", "content": "ok"},
            ],
        },
    ]


def count_message_value(enc, value):
    if isinstance(value, str):
        return len(enc.encode(value, disallowed_special=()))
    # A content-parts array: only the text parts cost tokens.
    return sum(len(enc.encode(p["text"], disallowed_special=())) for p in value if p.get("type") == "text")


def num_tokens_from_messages(enc, messages):
    """The cookbook's rule for gpt-4o / gpt-4 era chat models."""
    tokens_per_message = 3
    tokens_per_name = 1
    num_tokens = 0
    for message in messages:
        num_tokens += tokens_per_message
        for key, value in message.items():
            num_tokens += count_message_value(enc, value)
            if key == "name":
                num_tokens += tokens_per_name
    num_tokens += 3  # every reply is primed with <|start|>assistant<|message|>
    return num_tokens


def escape_invisible(json_text):
    """Writes format characters, unusual spaces and variation selectors as \\u escapes.

    The fixture is read by humans in review: a raw zero-width joiner or right-to-left override is
    invisible there (and bidi controls reorder the lines around them). JSON escapes keep the text
    identical for any parser while making every such character visible.
    """

    def esc(ch):
        cp = ord(ch)
        if cp > 0xFFFF:
            cp -= 0x10000
            return "\\u%04x\\u%04x" % (0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF))
        return "\\u%04x" % cp

    def invisible(ch):
        cat = unicodedata.category(ch)
        vs = 0xFE00 <= ord(ch) <= 0xFE0F or 0xE0100 <= ord(ch) <= 0xE01EF
        return cat in ("Cf", "Zl", "Zp") or (cat == "Zs" and ch != " ") or vs

    return "".join(esc(ch) if invisible(ch) else ch for ch in json_text)


def main():
    encs = {name: tiktoken.get_encoding(name) for name in ENCODINGS}
    corpus = cases()
    names = [n for n, _ in corpus]
    assert len(names) == len(set(names)), "case names must be unique"
    out_cases = []
    for name, text in corpus:
        case = {"name": name, "text": text}
        for enc_name, enc in encs.items():
            case[enc_name] = len(enc.encode(text, disallowed_special=()))
        out_cases.append(case)
    out_chats = []
    for chat in chats():
        expected = {
            model: num_tokens_from_messages(encs[enc_name], chat["messages"])
            for model, enc_name in CHAT_MODELS.items()
        }
        out_chats.append({"name": chat["name"], "messages": chat["messages"], "prompt_tokens": expected})
    doc = {
        "generated_by": "tests/data/tokens/make_fixture.py",
        "tiktoken": tiktoken.__version__,
        "cases": out_cases,
        "chat": out_chats,
    }
    text = escape_invisible(json.dumps(doc, ensure_ascii=False, indent=2))
    assert json.loads(text) == doc, "escaping must not change the fixture's content"
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write(text + "\n")
    print(f"wrote {OUT}: {len(out_cases)} cases, {len(out_chats)} chats, tiktoken {tiktoken.__version__}")


if __name__ == "__main__":
    main()
