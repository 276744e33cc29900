//! The shipped default standard against RULES.md §2, row by row.
//!
//! The table below is transcribed from RULES.md §2 by hand — it is deliberately independent of
//! `standards/2026.toml`, so a typo in either shows up as a failure here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jifen_standard::{
    DeciPoints, DeclaredBy, Format, Grade, ItemKind, Standard, UNIT_TYPES, default_2026,
};
use proptest::prelude::*;

use DeclaredBy::{Branch, Member};
use ItemKind::{Base, Bonus, Deduction, Veto};

/// (code, 名称, kind, points in deci-points, monthly cap, yearly cap (deci-points), declared by,
/// evidence required) — RULES.md §2.
type Row = (
    &'static str,
    &'static str,
    ItemKind,
    i32,
    Option<i32>,
    Option<i32>,
    DeclaredBy,
    bool,
);

const RULES_MD_SECTION_2: [Row; 50] = [
    (
        "P01",
        "参加支部集中学习",
        Base,
        20,
        Some(40),
        Some(120),
        Branch,
        false,
    ),
    (
        "P02",
        "撰写学习笔记",
        Base,
        10,
        Some(10),
        Some(40),
        Member,
        true,
    ),
    (
        "P03",
        "心得体会、研讨发言",
        Base,
        10,
        Some(10),
        Some(40),
        Member,
        true,
    ),
    (
        "P04",
        "线上学习达标(学习强国、灯塔等)",
        Base,
        10,
        Some(10),
        Some(40),
        Member,
        true,
    ),
    (
        "P05",
        "参加专题培训、党校轮训",
        Base,
        20,
        Some(20),
        Some(40),
        Member,
        true,
    ),
    (
        "P06",
        "应知应会测试合格",
        Base,
        20,
        Some(20),
        Some(40),
        Branch,
        false,
    ),
    (
        "O01",
        "参加支部党员大会",
        Base,
        30,
        Some(30),
        Some(120),
        Branch,
        false,
    ),
    (
        "O02",
        "参加党小组会",
        Base,
        10,
        Some(10),
        Some(120),
        Branch,
        false,
    ),
    (
        "O03",
        "参加党课",
        Base,
        20,
        Some(20),
        Some(80),
        Branch,
        false,
    ),
    (
        "O04",
        "参加主题党日",
        Base,
        20,
        Some(20),
        Some(80),
        Branch,
        false,
    ),
    (
        "O05",
        "参加组织生活会",
        Base,
        20,
        Some(20),
        Some(20),
        Branch,
        false,
    ),
    (
        "O06",
        "参加民主评议党员",
        Base,
        20,
        Some(20),
        Some(20),
        Branch,
        false,
    ),
    (
        "D01",
        "按月足额交纳党费",
        Base,
        5,
        Some(5),
        Some(60),
        Branch,
        false,
    ),
    (
        "D02",
        "向党组织汇报思想、报告个人有关事项",
        Base,
        10,
        Some(10),
        Some(40),
        Member,
        true,
    ),
    (
        "D03",
        "完成支部交办任务",
        Base,
        10,
        Some(20),
        Some(40),
        Branch,
        false,
    ),
    (
        "D04",
        "谈心谈话",
        Base,
        10,
        Some(10),
        Some(20),
        Branch,
        false,
    ),
    (
        "D05",
        "在职党员到社区报到、流动党员定期报告",
        Base,
        10,
        Some(10),
        Some(40),
        Member,
        true,
    ),
    (
        "M01",
        "全年遵纪守法、品行无负面记录",
        Base,
        50,
        Some(50),
        Some(50),
        Branch,
        false,
    ),
    // 名称 "岗位履职(个性指标, by unit type)": the English note is not part of the name.
    (
        "F01",
        "岗位履职(个性指标)",
        Base,
        10,
        Some(10),
        Some(120),
        Member,
        false,
    ),
    (
        "F02",
        "参加志愿服务",
        Base,
        20,
        Some(40),
        Some(80),
        Member,
        true,
    ),
    (
        "F03",
        "党员承诺践诺",
        Base,
        20,
        Some(20),
        Some(40),
        Member,
        true,
    ),
    (
        "F04",
        "党员示范岗、责任区履职",
        Base,
        10,
        Some(10),
        Some(40),
        Member,
        false,
    ),
    (
        "F05",
        "联系服务群众、结对帮扶",
        Base,
        10,
        Some(10),
        Some(40),
        Member,
        true,
    ),
    (
        "B01",
        "参加急难险重任务",
        Bonus,
        30,
        None,
        Some(60),
        Member,
        true,
    ),
    (
        "B02",
        "受县(处)级及以下表彰",
        Bonus,
        20,
        None,
        None,
        Member,
        true,
    ),
    ("B03", "受市(厅)级表彰", Bonus, 40, None, None, Member, true),
    (
        "B04",
        "受省部级及以上表彰",
        Bonus,
        60,
        None,
        None,
        Member,
        true,
    ),
    (
        "B05",
        "见义勇为、好人好事受通报表扬",
        Bonus,
        30,
        None,
        Some(60),
        Member,
        true,
    ),
    (
        "B06",
        "收到群众表扬信、锦旗",
        Bonus,
        10,
        None,
        Some(30),
        Member,
        true,
    ),
    (
        "B07",
        "合理化建议、创新成果被采纳",
        Bonus,
        20,
        None,
        Some(40),
        Member,
        true,
    ),
    (
        "B08",
        "宣传稿件、调研成果被采用",
        Bonus,
        10,
        None,
        Some(40),
        Member,
        true,
    ),
    (
        "B09",
        "兼任支委、党小组长、党务工作者且履职良好",
        Bonus,
        20,
        None,
        Some(20),
        Branch,
        false,
    ),
    (
        "B10",
        "技能竞赛、业务比武获奖",
        Bonus,
        20,
        None,
        Some(40),
        Member,
        true,
    ),
    (
        "B11",
        "讲党课、开展宣讲",
        Bonus,
        20,
        None,
        Some(40),
        Branch,
        false,
    ),
    (
        "X01",
        "无故缺席三会一课、主题党日",
        Deduction,
        -30,
        None,
        None,
        Branch,
        false,
    ),
    (
        "X02",
        "党费逾期未交超过一个月",
        Deduction,
        -20,
        None,
        None,
        Branch,
        false,
    ),
    (
        "X03",
        "季度学习任务未完成",
        Deduction,
        -10,
        None,
        None,
        Branch,
        false,
    ),
    (
        "X04",
        "不服从组织安排、不完成交办任务",
        Deduction,
        -30,
        None,
        None,
        Branch,
        false,
    ),
    (
        "X05",
        "工作或积分申报弄虚作假",
        Deduction,
        -50,
        None,
        None,
        Branch,
        false,
    ),
    (
        "X06",
        "无正当理由不参加支部组织的志愿服务、公益活动",
        Deduction,
        -20,
        None,
        None,
        Branch,
        false,
    ),
    (
        "X07",
        "群众投诉经查属实",
        Deduction,
        -30,
        None,
        None,
        Branch,
        false,
    ),
    (
        "X08",
        "受通报批评、诫勉或提醒谈话",
        Deduction,
        -50,
        None,
        None,
        Branch,
        false,
    ),
    (
        "X09",
        "发表、传播不当言论(含网络)",
        Deduction,
        -100,
        None,
        None,
        Branch,
        false,
    ),
    (
        "X10",
        "违反中央八项规定精神、廉洁纪律(未达处分)",
        Deduction,
        -100,
        None,
        None,
        Branch,
        false,
    ),
    (
        "X11",
        "受政务处分警告、记过",
        Deduction,
        -200,
        None,
        None,
        Branch,
        false,
    ),
    (
        "X12",
        "组织生活迟到早退",
        Deduction,
        -10,
        None,
        None,
        Branch,
        false,
    ),
    (
        "V01",
        "受记大过及以上政务处分",
        Veto,
        0,
        None,
        None,
        Branch,
        false,
    ),
    ("V02", "违法犯罪", Veto, 0, None, None, Branch, false),
    (
        "V03",
        "参加邪教、非法组织,散布政治谣言",
        Veto,
        0,
        None,
        None,
        Branch,
        false,
    ),
    (
        "V04",
        "无正当理由连续6个月不参加组织生活、不交党费或不做党所分配的工作(党章第九条)",
        Veto,
        0,
        None,
        None,
        Branch,
        false,
    ),
];

fn standard() -> Standard {
    default_2026().unwrap()
}

fn tenths(points: Option<DeciPoints>) -> Option<i32> {
    points.map(DeciPoints::tenths)
}

#[test]
fn the_default_has_50_items_by_kind() {
    let standard = standard();
    let items = standard.items();
    assert_eq!(items.len(), 50);
    let count = |kind| items.iter().filter(|i| i.kind == kind).count();
    assert_eq!(
        (count(Base), count(Bonus), count(Deduction), count(Veto)),
        (23, 11, 12, 4)
    );
}

#[test]
fn the_default_has_the_caps_of_rules_md() {
    let standard = standard();
    assert_eq!(standard.year(), 2026);
    assert_eq!(standard.base_cap(), DeciPoints::from_tenths(700));
    assert_eq!(standard.bonus_cap(), DeciPoints::from_tenths(100));
    let caps: Vec<(&str, ItemKind, Option<i32>)> = standard
        .categories()
        .iter()
        .map(|c| (c.code.as_str(), c.kind, tenths(c.cap)))
        .collect();
    assert_eq!(
        caps,
        [
            ("P", Base, Some(200)),
            ("O", Base, Some(200)),
            ("D", Base, Some(100)),
            ("M", Base, Some(50)),
            ("F", Base, Some(150)),
            ("B", Bonus, None),
            ("X", Deduction, None),
            ("V", Veto, None),
        ]
    );
    assert_eq!(standard.category("P").unwrap().name, "讲政治、有信念");
    let base_caps: i32 = caps.iter().filter_map(|c| c.2).sum();
    assert_eq!(base_caps, 700, "the base categories add up to base_cap");
}

#[test]
fn the_default_has_the_settings_of_rules_md() {
    let standard = standard();
    assert_eq!(standard.deadline_day(), 5);
    let evaluation = standard.evaluation();
    assert_eq!(evaluation.weight, DeciPoints::from_tenths(200));
    assert_eq!(evaluation.min_ballots, 5);
    let scores = evaluation.rating_scores;
    assert_eq!(
        [scores.excellent, scores.good, scores.fair, scores.poor].map(DeciPoints::tenths),
        [1000, 800, 600, 0]
    );
    let third = jifen_standard::Fraction {
        numerator: 1,
        denominator: 3,
    };
    assert_eq!(evaluation.poor_share_blocks_excellent, third);
    let grading = standard.grading();
    let bands = grading.bands;
    assert_eq!(
        [bands.excellent, bands.qualified, bands.basically_qualified].map(DeciPoints::tenths),
        [900, 700, 600]
    );
    assert_eq!(grading.excellent_share_cap, Some(third));
    assert_eq!(grading.publication_days, 7);
    let lapse = standard.lapse().unwrap();
    assert_eq!(lapse.months, 6);
    let watch: Vec<String> = lapse.watch.iter().map(ToString::to_string).collect();
    assert_eq!(watch, ["category:O", "item:D01"]);
}

#[test]
fn every_row_of_rules_md_section_2_matches() {
    let standard = standard();
    let items = standard.items();
    assert_eq!(items.len(), RULES_MD_SECTION_2.len());
    for (row, item) in RULES_MD_SECTION_2.iter().zip(items) {
        let (code, name, kind, points, monthly, yearly, declared_by, evidence) = *row;
        assert_eq!(item.code, code, "items are in RULES.md order");
        assert_eq!(item.name, name, "{code} name");
        assert_eq!(item.kind, kind, "{code} kind");
        assert_eq!(item.category, &code[..1], "{code} category");
        assert_eq!(item.points.tenths(), points, "{code} points");
        assert_eq!(tenths(item.monthly_cap), monthly, "{code} monthly_cap");
        assert_eq!(tenths(item.yearly_cap), yearly, "{code} yearly_cap");
        assert_eq!(item.declared_by, declared_by, "{code} declared_by");
        assert_eq!(item.evidence_required, evidence, "{code} evidence_required");
        let grade_cap = (code == "X11").then_some(Grade::BasicallyQualified);
        assert_eq!(item.grade_cap, grade_cap, "{code} grade_cap");
        assert!(
            item.name_en.as_deref().is_some_and(|n| !n.is_empty()),
            "{code} name_en"
        );
        assert!(!item.unit.is_empty(), "{code} unit");
    }
}

#[test]
fn overlays_replace_f01_for_their_unit_types() {
    let standard = standard();
    let common_f01 = standard.item("F01", "other").unwrap().clone();
    assert_eq!(common_f01.name, "岗位履职(个性指标)");
    let expected = [
        ("state_enterprise", "完成生产经营、安全生产指标"),
        ("rural", "带头发展产业、助力乡村振兴"),
        ("community", "参与社区治理、网格化服务"),
    ];
    for (unit_type, name) in expected {
        let items = standard.items_for(unit_type);
        assert_eq!(items.len(), 50, "{unit_type}");
        let f01: Vec<_> = items.iter().filter(|i| i.code == "F01").collect();
        assert_eq!(f01.len(), 1, "{unit_type}");
        let f01 = f01[0];
        assert_eq!(f01.name, name, "{unit_type}");
        assert_ne!(f01.name, common_f01.name);
        assert_eq!(standard.item("F01", unit_type), Some(f01));
        assert_eq!((f01.category.as_str(), f01.kind), ("F", Base));
        assert_eq!(f01.points, DeciPoints::from_tenths(10));
        assert_eq!(tenths(f01.monthly_cap), Some(10));
        assert_eq!(tenths(f01.yearly_cap), Some(120));
        assert_eq!(f01.declared_by, Member);
        // Everything else is the 共性 item.
        for item in items.iter().filter(|i| i.code != "F01") {
            assert_eq!(Some(item), standard.item(&item.code, "other"));
        }
    }
}

#[test]
fn unit_types_without_an_overlay_get_the_common_items() {
    let standard = standard();
    let mut common = standard.items().to_vec();
    common.sort_by(|a, b| a.code.cmp(&b.code));
    for unit_type in UNIT_TYPES.iter().copied().chain(["no_such_unit_type"]) {
        if standard.overlays().contains_key(unit_type) {
            continue;
        }
        let mut items = standard.items_for(unit_type);
        items.sort_by(|a, b| a.code.cmp(&b.code));
        assert_eq!(items, common, "{unit_type}");
    }
}

#[test]
fn items_for_orders_by_category_then_code() {
    let codes: Vec<String> = standard()
        .items_for("rural")
        .into_iter()
        .map(|i| i.code)
        .collect();
    let expected: Vec<&str> = RULES_MD_SECTION_2.iter().map(|row| row.0).collect();
    assert_eq!(codes, expected);
}

#[test]
fn toml_to_json_to_standard_is_the_same_standard() {
    let standard = standard();
    let json = serde_json::to_string(&standard).unwrap();
    assert_eq!(Standard::parse_json(&json).unwrap(), standard);
    let toml = standard.to_toml_string().unwrap();
    assert_eq!(Standard::parse_toml(&toml).unwrap(), standard);
    assert_eq!(
        Standard::parse_for_year(&json, Format::Json, 2026).unwrap(),
        standard
    );
}

#[test]
fn the_json_form_has_the_document_keys_and_api_item_shape() {
    let value = standard().to_json_value().unwrap();
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "base_cap",
            "bonus_cap",
            "categories",
            "deadline_day",
            "evaluation",
            "grading",
            "items",
            "lapse",
            "overlays",
            "year"
        ]
    );
    let d01 = json_item(&value, "D01");
    assert_eq!(d01["points"], serde_json::json!(0.5));
    assert_eq!(d01["monthly_cap"], serde_json::json!(0.5));
    let x11 = json_item(&value, "X11");
    assert_eq!(x11["points"], serde_json::json!(-20));
    assert_eq!(x11["grade_cap"], "basically_qualified");
    let v01 = json_item(&value, "V01");
    assert_eq!(v01["points"], serde_json::json!(0));
}

/// Random valid standards built from the default by changing amounts within the rules.
fn arbitrary_variant() -> impl Strategy<Value = serde_json::Value> {
    (
        proptest::collection::vec((0usize..50, 1i32..=100, 0i32..=100, any::<bool>()), 0..8),
        1u32..=28,
        (0i32..=300, 301i32..=600, 601i32..=1000),
    )
        .prop_map(|(edits, deadline_day, (basically, qualified, excellent))| {
            let mut doc = standard().to_json_value().unwrap();
            for (index, one, extra, drop_caps) in edits {
                let item = &mut doc["items"][index];
                let sign = match item["kind"].as_str().unwrap() {
                    "veto" => continue,
                    "deduction" => -1,
                    _ => 1,
                };
                let number =
                    |tenths: i32| serde_json::to_value(DeciPoints::from_tenths(tenths)).unwrap();
                item["points"] = number(sign * one);
                let object = item.as_object_mut().unwrap();
                if drop_caps {
                    object.remove("monthly_cap");
                    object.remove("yearly_cap");
                } else {
                    object.insert("monthly_cap".into(), number(one + extra));
                    object.insert("yearly_cap".into(), number(one + 2 * extra));
                }
            }
            doc["deadline_day"] = deadline_day.into();
            let number =
                |tenths: i32| serde_json::to_value(DeciPoints::from_tenths(tenths)).unwrap();
            doc["grading"]["bands"] = serde_json::json!({
                "excellent": number(excellent),
                "qualified": number(qualified),
                "basically_qualified": number(basically),
            });
            doc
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn toml_json_round_trips_of_valid_variants(doc in arbitrary_variant()) {
        let from_json = Standard::parse_json(&doc.to_string()).unwrap();
        let toml = from_json.to_toml_string().unwrap();
        let from_toml = Standard::parse_toml(&toml).unwrap();
        prop_assert_eq!(&from_toml, &from_json);
        let json_again = serde_json::to_string(&from_toml).unwrap();
        prop_assert_eq!(Standard::parse_json(&json_again).unwrap(), from_json);
    }
}

/// The item `code` of a standard's JSON form.
fn json_item<'a>(value: &'a serde_json::Value, code: &str) -> &'a serde_json::Value {
    value["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == code)
        .unwrap()
}
