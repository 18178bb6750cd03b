"""The report's words in English and Marathi (मराठी): headings, labels and the reasons in plain words.

A small table kept in the package rather than a gettext catalogue: the page has ~80 strings and one
other language, and a missing Marathi entry falls back to the English one (tests check that every
key has both, so that never happens silently). Reason codes stay visible next to their words, so a
manager and an operator can talk about the same row. Numbers, codes, commands and UDISE codes are
not translated.
"""

from __future__ import annotations

LANGS = ("en", "mr")
LANG_NAMES = {"en": "English", "mr": "मराठी (Marathi)"}

TEXT: dict[str, dict[str, str]] = {
    "title": {"en": "Reading-recording screening report", "mr": "वाचन ध्वनिमुद्रण तपासणी अहवाल"},
    "language": {"en": "Language: English", "mr": "भाषा: मराठी (Language: Marathi)"},
    "test_date": {"en": "Test date", "mr": "चाचणी दिनांक"},
    "test_dates": {"en": "Test dates", "mr": "चाचणी दिनांक"},
    "generated": {"en": "Generated", "mr": "तयार केला"},
    "source": {"en": "Source collection", "mr": "स्रोत संग्रह"},
    "contents": {"en": "Contents", "mr": "अनुक्रमणिका"},
    "summary": {"en": "Summary", "mr": "सारांश"},
    "screened": {"en": "Results", "mr": "निकाल"},
    "screened_ok": {"en": "Screened", "mr": "तपासलेली"},
    "anomalies": {"en": "Anomalies", "mr": "विसंगती"},
    "anomaly_rate": {"en": "Anomaly rate", "mr": "विसंगती दर"},
    "failed": {"en": "Processing failures", "mr": "प्रक्रिया अपयश"},
    "previous": {"en": "Previous test date", "mr": "मागील चाचणी दिनांक"},
    "no_previous": {"en": "No earlier test date has results.", "mr": "याआधीच्या कोणत्याही चाचणीचे निकाल नाहीत."},
    "coverage": {"en": "Coverage", "mr": "व्याप्ती"},
    "coverage_intro": {
        "en": "Reading rows in the source for this test date, and how far each got through screening.",
        "mr": "या चाचणीच्या स्रोतातील वाचन नोंदी आणि त्यांपैकी किती तपासल्या गेल्या.",
    },
    "coverage_off": {
        "en": "Coverage was not computed for this page (--no-coverage).",
        "mr": "या पानासाठी व्याप्ती मोजली नाही (--no-coverage).",
    },
    "eligible": {"en": "Reading rows in the source", "mr": "स्रोतातील वाचन नोंदी"},
    "invalid_rows": {"en": "Rows without usable audio (never sent)", "mr": "वापरण्याजोगा ऑडिओ नसलेल्या नोंदी"},
    "enqueued": {"en": "Discovered (sent for screening)", "mr": "शोधलेल्या (तपासणीसाठी पाठवलेल्या)"},
    "cov_ok": {"en": "Screened", "mr": "तपासलेल्या"},
    "cov_failed": {"en": "Failed", "mr": "अयशस्वी"},
    "cov_missing": {"en": "Not yet screened", "mr": "अद्याप न तपासलेल्या"},
    "gap": {"en": "Gap", "mr": "उरलेले"},
    "gap_enqueued": {"en": "waiting in the queue", "mr": "रांगेत प्रतीक्षेत"},
    "gap_behind": {"en": "passed over by discovery (run a sweep)", "mr": "शोधातून सुटलेल्या (sweep चालवा)"},
    "gap_undiscovered": {"en": "not discovered yet", "mr": "अजून शोधलेल्या नाहीत"},
    "by_reason": {"en": "Anomaly rate by reason", "mr": "कारणानुसार विसंगती दर"},
    "by_reason_intro": {
        "en": "Share of screened recordings flagged for each reason (a recording can have several reasons).",
        "mr": "प्रत्येक कारणासाठी चिन्हांकित तपासलेल्या ध्वनिमुद्रणांचे प्रमाण (एका ध्वनिमुद्रणाला अनेक कारणे असू शकतात).",
    },
    "reason": {"en": "Reason", "mr": "कारण"},
    "code": {"en": "Code", "mr": "कोड"},
    "count": {"en": "Count", "mr": "संख्या"},
    "rate": {"en": "Rate", "mr": "दर"},
    "threshold": {"en": "Threshold (from the model)", "mr": "मर्यादा (मॉडेलमधून)"},
    "thresholds_from": {"en": "Thresholds from", "mr": "मर्यादा यातून"},
    "no_anomalies": {"en": "No anomalies.", "mr": "एकही विसंगती नाही."},
    "by_place": {"en": "By place", "mr": "ठिकाणानुसार"},
    "by_place_intro": {
        "en": "Places are read from the UDISE code: state (2 digits), district (4), block (6). "
        "Places with fewer than {min} screened recordings, and codes that do not parse, are listed but not ranked.",
        "mr": "ठिकाण UDISE कोडवरून: राज्य (पहिले 2 अंक), जिल्हा (4), तालुका/गट (6). "
        "{min} पेक्षा कमी तपासलेली ध्वनिमुद्रणे असलेली ठिकाणे आणि न वाचता येणारे कोड यादीत आहेत पण क्रमवारीत नाहीत.",
    },
    "unparsed": {
        "en": "{n} result(s) carry a UDISE code that does not parse; they are counted under ?.",
        "mr": "{n} निकालांचा UDISE कोड वाचता आला नाही; ते ? खाली मोजले आहेत.",
    },
    "district": {"en": "District", "mr": "जिल्हा"},
    "block": {"en": "Block", "mr": "तालुका (गट)"},
    "school": {"en": "School (UDISE)", "mr": "शाळा (UDISE)"},
    "districts": {"en": "Districts", "mr": "जिल्हे"},
    "blocks": {"en": "Blocks", "mr": "तालुके (गट)"},
    "schools_top": {"en": "Schools with the highest anomaly rate", "mr": "सर्वाधिक विसंगती दर असलेल्या शाळा"},
    "ranked": {"en": "Ranked", "mr": "क्रमवारीत"},
    "yes": {"en": "yes", "mr": "होय"},
    "no_below": {"en": "no (below minimum)", "mr": "नाही (किमान संख्येखाली)"},
    "below_min": {
        "en": "{n} place(s) below the minimum of {min} are not ranked (see the CSV).",
        "mr": "किमान {min} पेक्षा कमी असलेली {n} ठिकाणे क्रमवारीत नाहीत (CSV पहा).",
    },
    "duplicates": {"en": "Duplicate recordings", "mr": "एकच ध्वनिमुद्रण अनेक विद्यार्थ्यांसाठी"},
    "duplicates_intro": {
        "en": "One recording uploaded for several children. The first result id is the original; "
        "look any of them up with `anomaly results show ID`.",
        "mr": "एकच ध्वनिमुद्रण अनेक मुलांसाठी अपलोड केले आहे. पहिला निकाल id मूळ आहे; `anomaly results show ID` ने पाहा.",
    },
    "no_duplicates": {"en": "No duplicate recordings.", "mr": "एकही पुनरावृत्त ध्वनिमुद्रण नाही."},
    "reuse": {"en": "One recording on several rows of one student", "mr": "एकाच विद्यार्थ्याच्या अनेक नोंदींवर एकच ध्वनिमुद्रण"},
    "reuse_intro": {
        "en": "The teacher's and the admin's check hold the same recording: not a copy across children, "
        "but the second check was not an independent recording.",
        "mr": "शिक्षक आणि प्रशासक तपासणीत एकच ध्वनिमुद्रण आहे: दुसऱ्या मुलाची प्रत नाही, पण दुसरी तपासणी स्वतंत्र ध्वनिमुद्रण नव्हते.",
    },
    "cluster_size": {"en": "Recordings", "mr": "ध्वनिमुद्रणे"},
    "students": {"en": "Students", "mr": "विद्यार्थी"},
    "schools": {"en": "Schools", "mr": "शाळा"},
    "result_ids": {"en": "Result ids", "mr": "निकाल id"},
    "failures": {"en": "Processing failures", "mr": "प्रक्रियेतील अपयश"},
    "failures_intro": {
        "en": "Recordings that could not be fetched or decoded, by error code, with what to do.",
        "mr": "आणता किंवा उघडता न आलेली ध्वनिमुद्रणे, त्रुटी कोडनुसार, आणि काय करावे.",
    },
    "no_failures": {"en": "No processing failures.", "mr": "प्रक्रियेत एकही अपयश नाही."},
    "error_code": {"en": "Error code", "mr": "त्रुटी कोड"},
    "action": {"en": "What to do (runbook)", "mr": "काय करावे (runbook)"},
    "over_time": {"en": "Over time", "mr": "कालानुसार"},
    "over_time_intro": {
        "en": "Anomaly rate by reason on each test date.",
        "mr": "प्रत्येक चाचणी दिनांकाला कारणानुसार विसंगती दर.",
    },
    "one_date": {
        "en": "Only one test date has results: nothing to compare yet.",
        "mr": "फक्त एकाच चाचणीचे निकाल आहेत: तुलना करण्यासारखे काही नाही.",
    },
    "download_csv": {"en": "Download CSV", "mr": "CSV डाउनलोड करा"},
    "chart_text": {"en": "Chart as text", "mr": "आलेख मजकूर स्वरूपात"},
    "record_types": {"en": "By record type", "mr": "नोंद प्रकारानुसार"},
    "record_type": {"en": "Record type", "mr": "नोंद प्रकार"},
    "footer": {
        "en": "Made by `anomaly results report`. Counts: an anomaly is a recording screened and flagged; "
        "a processing failure is never also an anomaly; rates are over screened recordings.",
        "mr": "`anomaly results report` ने तयार केले. विसंगती म्हणजे तपासलेले व चिन्हांकित ध्वनिमुद्रण; "
        "प्रक्रिया अपयश कधीही विसंगती म्हणून मोजले जात नाही; दर तपासलेल्या ध्वनिमुद्रणांवर आहेत.",
    },
    "of": {"en": "of", "mr": "पैकी"},
    "vs_previous": {"en": "previous", "mr": "मागील"},
    "more_rows": {
        "en": "{n} more row(s) in the CSV.",
        "mr": "आणखी {n} ओळी CSV मध्ये.",
    },
}

#: Reason codes in plain words (codes from :data:`anomaly_cli.screening.REASON_CODES`).
REASONS: dict[str, dict[str, str]] = {
    "unavailable": {"en": "Recording could not be fetched", "mr": "ध्वनिमुद्रण मिळाले नाही"},
    "corrupt": {"en": "File is damaged, cannot be played", "mr": "फाइल खराब, वाजवता येत नाही"},
    "truncated": {"en": "Upload cut short", "mr": "अपलोड अर्धवट"},
    "too_short": {"en": "Too short to be a reading", "mr": "वाचनासाठी खूप लहान"},
    "too_long": {"en": "Far too long (recorder left running)", "mr": "खूप लांब (रेकॉर्डर चालू राहिला)"},
    "silent": {"en": "Silent: nothing audible", "mr": "शांत: काहीच ऐकू येत नाही"},
    "low_volume": {"en": "Too quiet to assess", "mr": "आवाज खूप कमी"},
    "no_speech": {"en": "Sound but no speech (noise, music, hum)", "mr": "आवाज आहे पण बोलणे नाही"},
    "noisy": {"en": "Speech drowned in noise", "mr": "गोंगाटात बोलणे हरवले"},
    "clipped": {"en": "Distorted: too loud for the microphone", "mr": "विकृत: माइकसाठी खूप मोठा आवाज"},
    "dc_offset": {"en": "Faulty recording device (DC offset)", "mr": "रेकॉर्डिंग उपकरणात दोष (DC offset)"},
    "duplicate": {"en": "Same recording as another child's", "mr": "दुसऱ्या मुलाचेच ध्वनिमुद्रण"},
    "outlier": {"en": "Unusual recording (statistical model)", "mr": "असामान्य ध्वनिमुद्रण (सांख्यिकीय मॉडेल)"},
}


def t(key: str, lang: str, **values: object) -> str:
    """The text of ``key`` in ``lang`` (English when the language lacks it), formatted with ``values``."""
    entry = TEXT[key]
    text = entry.get(lang) or entry["en"]
    return text.format(**values) if values else text


def reason_words(code: str, lang: str) -> str:
    """A reason code in plain words (the code itself when the table does not know it)."""
    entry = REASONS.get(code)
    if not entry:
        return code
    return entry.get(lang) or entry["en"]
