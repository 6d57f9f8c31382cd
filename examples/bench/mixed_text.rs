//! The dry-run scenario's prompts: ~1 KB each, a mix of the text that is hard for a BPE merge.
//!
//! Tokenizers split text into pieces (runs of letters, of digits, of punctuation, of spaces) and
//! merge each piece's bytes into tokens. English has short pieces; the text users also send has
//! long ones: base64 blobs, URLs, runs of one character, minified code, CJK without spaces, emoji
//! joined by zero-width joiners, words of several scripts run together. A merge that is quadratic
//! in a piece's length is slow exactly there. Every row here is built of segments of those kinds
//! (and some plain English), picked and varied by a fixed pseudo-random walk: every row differs,
//! and every run of the benchmark writes the same file.

use base64::Engine as _;

/// A fixed pseudo-random walk (a 64-bit LCG): the same sequence on every run.
pub struct Walk(u64);

impl Walk {
    pub fn new() -> Walk {
        Walk(0x9e37_79b9_7f4a_7c15)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.next() as usize % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "the",
    "product",
    "review",
    "customer",
    "delivery",
    "quality",
    "summarize",
    "following",
    "price",
    "excellent",
    "disappointing",
    "arrived",
    "quickly",
    "packaging",
    "recommend",
    "battery",
    "screen",
    "however",
    "although",
    "because",
    "lightweight",
    "durable",
    "warranty",
    "support",
    "returned",
    "2024",
    "model",
    "version",
    "great",
    "value",
    "would",
    "buy",
    "again",
    "not",
    "worth",
    "it",
    "and",
    "but",
    "with",
    "for",
    "of",
    "a",
    "in",
    "on",
];

const CJK: &[&str] = &[
    "人工智能",
    "正在",
    "改变",
    "世界",
    "我们",
    "今天",
    "去公园",
    "散步",
    "天气",
    "非常好",
    "機器學習",
    "自然語言",
    "處理",
    "東京",
    "タワー",
    "ひらがな",
    "カタカナ",
    "漢字",
    "書きます",
    "안녕하세요",
    "한국어",
    "공부",
    "날씨가",
    "좋네요",
    "数据",
    "模型",
    "训练",
    "推理",
];

const EMOJI: &[&str] = &[
    "👨\u{200d}👩\u{200d}👧\u{200d}👦",
    "👩🏽\u{200d}💻",
    "🧑🏿\u{200d}🚀",
    "👨\u{200d}🔬",
    "🏳\u{fe0f}\u{200d}🌈",
    "🏴\u{200d}☠\u{fe0f}",
    "👋🏻",
    "🇯🇵",
    "🍕",
    "☕\u{fe0f}",
    "😂",
    "🙃",
    "1\u{fe0f}\u{20e3}",
];

const SCRIPTS: &[&str] = &[
    "Привет",
    "мир",
    "γειά",
    "κόσμε",
    "مرحبا",
    "שלום",
    "नमस्ते",
    "สวัสดี",
    "Hello",
    "世界",
    "Grüße",
    "naïve",
    "café",
];

/// One prompt of at least `size` bytes (a segment may run a little over).
pub fn prompt(walk: &mut Walk, size: usize) -> String {
    let mut text = String::with_capacity(size + 400);
    while text.len() < size {
        let room = size - text.len();
        match walk.below(9) {
            0 => english(walk, &mut text, room.min(300)),
            1 => base64_blob(walk, &mut text, room.min(600)),
            2 => url(walk, &mut text),
            3 => repeated(walk, &mut text, room.min(400)),
            4 => minified_js(walk, &mut text, room.min(500)),
            5 => joined(walk, &mut text, CJK, room.min(600)),
            6 => joined(walk, &mut text, EMOJI, room.min(400)),
            7 => joined(walk, &mut text, SCRIPTS, room.min(300)),
            _ => letters(walk, &mut text, room.min(500)),
        }
        text.push(' ');
    }
    // Three runs of spaces in a row (a chance of 1 in 99³, so lines 36,401 and 904,473 of the
    // 1,000,000) make a prompt of nothing but spaces, which `run` refuses as empty and
    // `estimate` counts as invalid (it then exits 1 and its total leaves the row out, while
    // tiktoken counts it). Such a prompt gets a few words: every row is valid.
    if text.trim().is_empty() {
        english(walk, &mut text, 20);
    }
    text
}

fn english(walk: &mut Walk, text: &mut String, n: usize) {
    let end = text.len() + n;
    while text.len() < end {
        text.push_str(walk.pick(WORDS));
        text.push(if walk.below(11) == 0 { '.' } else { ' ' });
    }
}

fn base64_blob(walk: &mut Walk, text: &mut String, n: usize) {
    let bytes: Vec<u8> = (0..n * 3 / 4).map(|_| walk.next() as u8).collect();
    base64::engine::general_purpose::STANDARD.encode_string(bytes, text);
}

fn url(walk: &mut Walk, text: &mut String) {
    text.push_str("https://cdn.example.com/assets/v");
    text.push_str(&walk.below(100).to_string());
    for _ in 0..1 + walk.below(4) {
        text.push('/');
        text.push_str(walk.pick(WORDS));
    }
    text.push('?');
    for i in 0..2 + walk.below(8) {
        text.push_str(&format!("{}k{i}={:x}&", walk.pick(WORDS), walk.next()));
    }
    text.push_str("utm_source=newsletter");
}

fn repeated(walk: &mut Walk, text: &mut String, n: usize) {
    let c = ['a', 'z', '=', '-', '0', '.', '*', '#', ' ', '的', 'x'][walk.below(11)];
    text.extend(std::iter::repeat_n(c, n / c.len_utf8()));
}

fn minified_js(walk: &mut Walk, text: &mut String, n: usize) {
    let end = text.len() + n;
    while text.len() < end {
        let (i, k) = (walk.next() % 4096, walk.below(9) + 1);
        text.push_str(&format!(
            "function _{i:x}(a,b){{var c=a.map(function(x){{return x*{k}+b}}).filter(function(y){{return y>{k}&&y!==null}});return{{id:{i},v:c,ok:!0}}}};"
        ));
    }
}

/// Items of one list run together without spaces.
fn joined(walk: &mut Walk, text: &mut String, items: &[&str], n: usize) {
    let end = text.len() + n;
    while text.len() < end {
        text.push_str(walk.pick(items));
    }
}

/// Lower-case letters without a break: one piece for every encoding.
fn letters(walk: &mut Walk, text: &mut String, n: usize) {
    text.extend((0..n).map(|_| (b'a' + walk.below(26) as u8) as char));
}
