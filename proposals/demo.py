"""Demo data for the collaboration-testing register: Saga Prefecture, FY2006 to the current year.

What it builds (DOMAIN.md §1):

- the prefecture and its 20 municipalities under their real local government codes, with
  departments;
- the current fiscal year's catalogue (about 2,000 operations, most of them the prefecture's);
- municipal participation per fiscal year (the seed's figures for FY2009–FY2012);
- CSO proposals from FY2006 on, moved through their steps by ``proposals.services``, so that
  ``adoption_statistics()`` reproduces the source document's tables cell by cell
  (``SEED_STATISTICS``), with withdrawn and non-CSO proposals mixed in that the statistics must
  leave out.

Two rules keep it repeatable:

- **Deterministic.** Every choice comes from ``random.Random`` seeded with ``SEED`` and the part
  being planned (a string seed is hashed with SHA-512, so it does not depend on
  ``PYTHONHASHSEED``). Planning is pure: ``plan_*`` functions return plain records and never read
  the database, so a second run plans exactly what the first one did.
- **Idempotent.** Applying a plan skips what already exists under its natural key (body code;
  body + department name; fiscal year + body + operation code; organisation name; reference
  ``SAGA-<FY>-<NNNN>`` …), so running it again changes nothing.

Dates follow one more rule: what would happen after today has not happened yet. Proposals of the
current fiscal year are received no later than today, and a step dated in the future (a decision,
a contract, an assessment) is left out, which leaves such proposals in consultation.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TextIO

from django.db import transaction
from django.utils import timezone

from accounts.models import GovernmentBody, Organization

from . import services
from .fiscal import JAPAN, current_fiscal_year, fiscal_year_bounds, fiscal_year_of
from .models import (
    Department,
    Operation,
    OrientationSession,
    Participation,
    Proposal,
    ProposalEvent,
)

SEED = "saga-collaboration-testing-demo-v1"
SOURCE = "demo"
REFERENCE_PREFIX = "SAGA"
FIRST_FISCAL_YEAR = 2006
# From FY2009 the scheme also took proposals to municipal governments.
FIRST_MUNICIPAL_YEAR = 2009

PREF = GovernmentBody.Kind.PREFECTURE
MUNI = GovernmentBody.Kind.MUNICIPALITY
CSO = Organization.Kind.CSO
Decision = Proposal.Decision
Budget = Proposal.BudgetProvision

# ---------------------------------------------------------------------------------------------
# Fixed facts
# ---------------------------------------------------------------------------------------------

PREFECTURE = ("410004", "佐賀県")
MUNICIPALITIES = [
    ("412015", "佐賀市"),
    ("412023", "唐津市"),
    ("412031", "鳥栖市"),
    ("412040", "多久市"),
    ("412058", "伊万里市"),
    ("412066", "武雄市"),
    ("412074", "鹿島市"),
    ("412082", "小城市"),
    ("412091", "嬉野市"),
    ("412104", "神埼市"),
    ("413275", "吉野ヶ里町"),
    ("413411", "基山町"),
    ("413453", "上峰町"),
    ("413461", "みやき町"),
    ("413879", "玄海町"),
    ("414018", "有田町"),
    ("414239", "大町町"),
    ("414247", "江北町"),
    ("414255", "白石町"),
    ("414417", "太良町"),
]
MUNICIPALITY_NAMES = dict(MUNICIPALITIES)

# The source document's adoption tables: (fiscal year, level) → (proposing organisations,
# proposals, adopted). Rates follow from these; CSO proposals only, withdrawn ones not counted.
SEED_STATISTICS: dict[tuple[int, str], tuple[int, int, int]] = {
    (2006, PREF): (14, 185, 79),
    (2007, PREF): (27, 80, 59),
    (2008, PREF): (48, 74, 52),
    (2009, PREF): (15, 25, 22),
    (2010, PREF): (14, 21, 18),
    (2011, PREF): (20, 31, 30),
    (2012, PREF): (27, 78, 78),
    (2009, MUNI): (17, 38, 19),
    (2010, MUNI): (8, 11, 4),
    (2011, MUNI): (22, 33, 19),
    (2012, MUNI): (16, 20, 6),
}

# Participating municipalities per fiscal year: FY2009–FY2012 are the seed's; later years are
# plausible (a slow decline, a dip in the pandemic year, a partial recovery).
PARTICIPATION_COUNTS = {
    2009: 18, 2010: 18, 2011: 19, 2012: 17, 2013: 17, 2014: 16, 2015: 16, 2016: 15, 2017: 15,
    2018: 14, 2019: 14, 2020: 12, 2021: 13, 2022: 13, 2023: 14, 2024: 14, 2025: 15, 2026: 15,
}  # fmt: skip
LATER_PARTICIPATION = 15

# Most to least regular participant: the cities first, then the larger towns. Each year takes
# the head of this list and a couple of others, so membership is stable but not frozen.
PARTICIPATION_ORDER = [
    "412015", "412023", "412031", "412066", "412058", "412082", "412074", "412091", "412104",
    "412040", "414018", "413461", "413411", "413275", "414255", "414247", "413453", "414239",
    "413879", "414417",
]  # fmt: skip

# From this year on the demo has more proposals a year: they are what the fund's pages show.
BUSY_YEARS_FROM = 2024

PREFECTURE_OPERATIONS = 1_860
MUNICIPAL_OPERATIONS = (6, 10)  # per participating municipality

# Prefectural departments: (部 課, topics of their operations, whom the operations reach).
PREFECTURE_DEPARTMENTS: list[tuple[str, list[str], list[str]]] = [
    ("政策部 企画課", ["総合計画", "地域政策", "政策評価", "県民意識調査"], ["県民", "市町"]),
    ("政策部 広報広聴課", ["県政広報", "広聴", "県民の声", "県政だより"], ["県民"]),
    ("政策部 デジタル推進課", ["行政デジタル化", "オープンデータ", "デジタル人材"],
     ["県民", "市町", "中小企業"]),
    ("総務部 行政経営課", ["行政改革", "業務改善", "県有施設マネジメント"], ["県職員", "県民"]),
    ("総務部 人事課", ["職員研修", "働き方改革"], ["県職員"]),
    ("危機管理・報道局 危機管理防災課", ["地域防災", "自主防災組織", "防災訓練", "避難所運営"],
     ["県民", "自主防災組織", "市町"]),
    ("地域交流部 さが創生推進課", ["移住定住", "地域おこし協力隊", "関係人口", "中山間地域振興"],
     ["移住希望者", "県民", "市町"]),
    ("地域交流部 観光課", ["観光振興", "インバウンド", "観光ボランティアガイド", "温泉地活性化"],
     ["観光客", "観光事業者"]),
    ("地域交流部 国際課", ["国際交流", "多文化共生", "外国人相談", "日本語学習支援"],
     ["外国人住民", "県民"]),
    ("地域交流部 文化課", ["文化芸術振興", "伝統芸能継承", "美術館・博物館活用"],
     ["県民", "文化団体"]),
    ("地域交流部 スポーツ課", ["生涯スポーツ", "総合型地域スポーツクラブ", "障害者スポーツ"],
     ["県民", "スポーツ団体"]),
    ("県民環境部 協働推進課", ["県民協働", "NPO活動", "ボランティア活動", "協働化テスト",
                               "CSO活動支援"], ["CSO", "県民", "企業"]),
    ("県民環境部 男女参画・女性の活躍推進課", ["男女共同参画", "女性の活躍", "DV防止"],
     ["県民", "企業", "女性"]),
    ("県民環境部 くらしの安全安心課", ["消費者教育", "交通安全", "防犯まちづくり", "消費生活相談"],
     ["県民", "高齢者", "学生"]),
    ("県民環境部 環境課", ["地球温暖化対策", "環境教育", "省エネルギー", "再生可能エネルギー"],
     ["県民", "事業者", "児童生徒"]),
    ("県民環境部 循環型社会推進課", ["ごみ減量", "食品ロス削減", "海岸漂着物対策",
                                     "プラスチック資源循環"], ["県民", "事業者"]),
    ("県民環境部 有明海再生・自然環境課", ["有明海再生", "生物多様性", "干潟保全",
                                           "自然公園管理"], ["県民", "漁業者", "NPO"]),
    ("健康福祉部 福祉課", ["地域福祉", "生活困窮者自立支援", "民生委員活動", "ひきこもり支援"],
     ["県民", "生活困窮者", "市町"]),
    ("健康福祉部 長寿社会課", ["介護予防", "認知症対策", "地域包括ケア", "高齢者の生きがいづくり"],
     ["高齢者", "介護事業者", "家族介護者"]),
    ("健康福祉部 障害福祉課", ["障害者就労支援", "障害者の社会参加", "発達障害者支援",
                               "難病患者支援"], ["障害のある人", "家族", "事業者"]),
    ("健康福祉部 健康づくり課", ["健康づくり", "食育", "がん検診受診促進", "歯科保健"],
     ["県民", "働く世代"]),
    ("健康福祉部 医務課", ["地域医療", "医療人材確保", "救急医療"], ["県民", "医療機関"]),
    ("男女参画・こども局 こども家庭課", ["子育て支援", "ひとり親家庭支援", "児童虐待防止",
                                         "子どもの貧困対策"], ["子育て家庭", "ひとり親家庭"]),
    ("男女参画・こども局 こども未来課", ["少子化対策", "結婚支援", "子どもの居場所づくり",
                                         "ヤングケアラー支援"], ["若者", "子ども", "子育て家庭"]),
    ("産業労働部 産業政策課", ["中小企業支援", "創業支援", "事業承継"], ["中小企業", "創業希望者"]),
    ("産業労働部 雇用労働課", ["若者の県内就職", "UIJターン就職", "職業能力開発"],
     ["若者", "求職者", "企業"]),
    ("産業労働部 ものづくり産業課", ["ものづくり人材育成", "伝統的工芸品振興", "窯業振興"],
     ["事業者", "職人"]),
    ("農林水産部 農山漁村課", ["農村振興", "棚田保全", "鳥獣被害対策", "グリーンツーリズム"],
     ["農業者", "集落", "都市住民"]),
    ("農林水産部 農業経営課", ["新規就農支援", "担い手育成", "耕作放棄地対策"],
     ["農業者", "就農希望者"]),
    ("農林水産部 林業課", ["森林づくり", "県産材利用", "森林ボランティア"], ["県民", "林業者"]),
    ("農林水産部 水産課", ["水産振興", "のり養殖", "漁村活性化"], ["漁業者"]),
    ("農林水産部 流通・通商課", ["県産品販路拡大", "地産地消", "農産物輸出"],
     ["生産者", "消費者"]),
    ("県土整備部 まちづくり課", ["景観まちづくり", "空き家対策", "公園管理"], ["県民", "市町"]),
    ("県土整備部 道路課", ["道路美化", "自転車活用", "道路愛護"], ["県民", "地域団体"]),
    ("県土整備部 河川砂防課", ["河川愛護", "水辺環境", "土砂災害防止"], ["県民", "地域団体"]),
    ("教育委員会 社会教育・文化財課", ["生涯学習", "家庭教育支援", "文化財保存活用",
                                       "読書活動推進"], ["県民", "保護者", "児童生徒"]),
    ("教育委員会 学校教育課", ["不登校児童生徒支援", "キャリア教育", "地域と学校の連携"],
     ["児童生徒", "教員", "保護者"]),
    ("教育委員会 保健体育課", ["学校保健", "子どもの体力向上", "部活動地域移行"],
     ["児童生徒", "地域スポーツ団体"]),
]  # fmt: skip

# Municipal departments (a few per municipality): (課, topics, targets).
MUNICIPAL_DEPARTMENTS: list[tuple[str, list[str], list[str]]] = [
    ("総務課", ["地域防災", "自主防災組織"], ["住民", "自治会"]),
    ("企画政策課", ["移住定住", "ふるさと納税", "地域おこし協力隊"], ["移住希望者", "住民"]),
    ("協働推進課", ["住民協働", "市民活動", "自治会活動"], ["住民", "市民活動団体"]),
    ("福祉課", ["地域福祉", "障がい者福祉", "生活困窮者支援"], ["住民", "障がいのある人"]),
    ("子育て支援課", ["子育て支援", "放課後児童クラブ", "子ども食堂"], ["子育て家庭", "子ども"]),
    ("健康づくり課", ["健康診査", "食育", "介護予防"], ["住民", "高齢者"]),
    ("環境課", ["ごみ減量", "環境美化", "地球温暖化対策"], ["住民", "事業者"]),
    ("農林水産課", ["農業振興", "耕作放棄地対策", "鳥獣被害対策"], ["農業者"]),
    ("商工観光課", ["観光振興", "商店街活性化", "特産品開発"], ["観光客", "事業者"]),
    ("生涯学習課", ["公民館活動", "図書館活動", "文化財保存"], ["住民", "児童生徒"]),
]  # fmt: skip

# (title suffix, summary template). {topic} and {target} are filled in per operation.
ACTIVITIES: list[tuple[str, str]] = [
    ("推進事業", "{topic}の推進に向け、関係機関と連携した取組を行う。"),
    ("啓発事業", "{target}に向けて{topic}に関する啓発(リーフレットの作成、講演会の開催等)を行う。"),
    ("相談窓口運営事業", "{target}からの{topic}に関する相談に応じる窓口を運営する。"),
    ("人材育成事業", "{topic}を担う人材を育成するため、研修・講座を実施する。"),
    ("実態調査事業", "{topic}の現状と課題を把握するため、{target}を対象に調査を行う。"),
    ("情報発信事業", "ウェブサイトやSNSを活用し、{topic}に関する情報を{target}に発信する。"),
    ("講座開催事業", "{target}を対象に{topic}に関する講座を開催する。"),
    ("ネットワーク構築事業", "{topic}に関わる団体・機関のネットワークづくりを進める。"),
    ("イベント開催事業", "{topic}への理解を深めるため、{target}が参加するイベントを開催する。"),
    ("モデル事業", "{topic}に関する先進的な取組をモデル地域で試行し、効果を検証する。"),
    ("補助事業", "{topic}に取り組む団体等に対し、経費の一部を補助する。"),
    ("拠点運営事業", "{topic}の拠点となる施設を運営し、{target}の活動を支える。"),
    ("研修事業", "{target}を対象とした{topic}に関する研修を実施する。"),
    ("普及促進事業", "{topic}の普及を図るため、{target}への働きかけを行う。"),
    ("支援員派遣事業", "{topic}に関する専門の支援員を派遣し、{target}を支援する。"),
    ("計画策定事業", "{topic}に関する計画の策定・見直しを行う。"),
    ("協議会運営事業", "{topic}に関する協議会を運営し、関係者の意見を施策に反映する。"),
    ("表彰事業", "{topic}に功績のあった{target}・団体を表彰し、取組を広く紹介する。"),
]

PROVIDERS = [
    ("直営(職員)", 40),
    ("民間事業者に委託", 18),
    ("NPO法人等に委託", 8),
    ("公益財団法人等に委託", 7),
    ("市町・関係団体に補助", 10),
    ("実行委員会", 6),
    ("指定管理者", 5),
    ("社会福祉協議会に委託", 6),
]
COLLABORATION_POTENTIAL = [
    "企画段階から協働の余地あり。CSOの専門性・機動性を生かした実施が見込める。",
    "委託による協働の可能性あり。現場での相談対応や訪問活動はCSOが担える。",
    "情報発信・広報部分について協働の余地あり。",
    "イベントの企画・運営について、実行委員会への参画による協働が可能。",
    "CSOとの共催による実施が可能。参加者の掘り起こしに効果が見込める。",
    "当事者団体の参画により、事業の質の向上が期待できる。",
    "調査の設計・実施について大学・CSOとの協働が考えられる。",
    "法令に基づき県が直接行う必要がある部分が多く、協働の余地は小さい。",
]

# CSO names: [legal form] + place + theme. Place carries a home municipality where it has one.
CSO_PLACES: list[tuple[str, str | None]] = [
    ("さが", None), ("佐賀県", None), ("有明", None), ("肥前", None), ("天山", None),
    ("脊振", None), ("多良岳", "414417"), ("佐賀", "412015"), ("唐津", "412023"),
    ("鳥栖", "412031"), ("多久", "412040"), ("伊万里", "412058"), ("武雄", "412066"),
    ("鹿島", "412074"), ("小城", "412082"), ("嬉野", "412091"), ("神埼", "412104"),
    ("吉野ヶ里", "413275"), ("基山", "413411"), ("上峰", "413453"), ("みやき", "413461"),
    ("玄海", "413879"), ("有田", "414018"), ("大町", "414239"), ("江北", "414247"),
    ("白石", "414255"), ("太良", "414417"),
]  # fmt: skip
# Fields of activity: the themes a CSO's name is built from, the subjects it proposes new
# projects on, and words of the departments whose operations it takes an interest in.
CSO_FIELDS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "子ども・子育て": (
        ["子育て支援ネットワーク", "こども食堂ネットワーク", "子どもの居場所づくりの会",
         "読み聞かせの会", "不登校を考える会", "ヤングケアラー支援ネット", "ユースセンター"],
        ["子ども食堂", "ひとり親家庭の学習支援", "不登校児童生徒の居場所", "子育て世代の交流",
         "ヤングケアラー支援", "家庭教育支援"],
        ["こども", "子育て", "学校教育", "社会教育", "生涯学習"],
    ),
    "環境・農林水産": (
        ["環境ネット", "自然学校", "里山の会", "有機農業研究会", "棚田保存会",
         "海岸クリーンアップの会", "森林ボランティアの会"],
        ["里山の保全", "有明海の干潟保全", "耕作放棄地の再生", "海岸漂着ごみ対策", "環境教育",
         "棚田の保全", "食品ロス削減"],
        ["環境", "循環型", "有明海", "農", "林業", "水産"],
    ),
    "保健・福祉": (
        ["地域福祉サポートセンター", "障がい者就労支援センター", "高齢者見守り隊",
         "ひきこもり家族会", "移動支援サービス", "認知症の人と家族の会", "在宅ケア研究会",
         "フードバンク", "食育推進の会"],
        ["高齢者の買い物支援", "障がい者の就労支援", "ひきこもり支援", "認知症カフェ",
         "難病患者の就労支援", "フードバンク", "食育"],
        ["福祉", "長寿", "障害", "健康", "医務"],
    ),
    "まちづくり・防災": (
        ["まちづくり協議会", "まちづくり研究所", "市民活動サポートセンター", "ITサポートセンター",
         "若者未来会議", "男女共同参画ネット", "消費者の会", "防災ネットワーク",
         "災害ボランティアの会"],
        ["空き家の利活用", "地域防災", "若者の県内定着", "災害ボランティアの受け入れ",
         "地域公共交通の維持", "市民活動の活性化"],
        ["協働", "総務", "企画", "創生", "防災", "まちづくり", "くらし", "男女", "デジタル",
         "雇用"],
    ),
    "文化・国際・スポーツ": (
        ["国際交流の会", "多文化共生センター", "文化振興会", "伝統工芸継承の会",
         "歴史遺産を守る会", "観光ボランティアガイドの会", "総合型地域スポーツクラブ",
         "アートプロジェクト"],
        ["外国人住民の生活支援", "多文化共生", "伝統工芸の継承", "地域の歴史資料の保存",
         "観光ボランティアガイド", "地域スポーツ"],
        ["国際", "文化", "観光", "スポーツ", "商工", "ものづくり", "保健体育"],
    ),
}  # fmt: skip
CSO_FORMS = [("NPO法人 ", 55), ("認定NPO法人 ", 8), ("一般社団法人 ", 20), ("", 17)]
CSO_POOL_SIZE = 190

NON_CSO_ORGANIZATIONS: list[tuple[str, str]] = [
    ("株式会社 さがデジタルソリューションズ", Organization.Kind.COMPANY),
    ("株式会社 有明ロジスティクス", Organization.Kind.COMPANY),
    ("株式会社 唐津まちづくりカンパニー", Organization.Kind.COMPANY),
    ("有限会社 伊万里観光企画", Organization.Kind.COMPANY),
    ("株式会社 肥前エナジー", Organization.Kind.COMPANY),
    ("学校法人 肥前学園 佐賀未来大学 地域連携センター", Organization.Kind.UNIVERSITY),
    ("学校法人 有明学院 九州地域福祉大学", Organization.Kind.UNIVERSITY),
    ("佐賀県立農業短期大学校 研究会", Organization.Kind.UNIVERSITY),
    ("本庄地区自治会連合会", Organization.Kind.OTHER),
    ("鳥栖市商店街振興組合連合会", Organization.Kind.OTHER),
]

# New-project proposals: a subject of the proposer's field + suffix, e.g.
# 「ひとり親家庭の学習支援の拠点づくり」.
ALL_SUBJECTS = [subject for _, subjects, _ in CSO_FIELDS.values() for subject in subjects]
PROPOSAL_SUFFIXES = [
    "に関するネットワーク構築", "の担い手育成講座", "の相談窓口開設", "の実態調査と政策提言",
    "の情報発信事業", "のモデル事業", "に向けた協働推進事業", "の拠点づくり",
]  # fmt: skip
OPERATION_APPROACHES = [
    "の協働による実施",
    "のNPOへの委託による効率化",
    "への当事者参画による改善",
    "における地域団体との連携強化",
    "の事業手法の見直し",
    "の情報発信の協働化",
]
PROPOSAL_BENEFITS = [
    "CSOの専門性と地域のネットワークを生かし、行政だけでは届きにくい人への支援を行う。",
    "当事者の声を事業に反映し、サービスの質の向上を図る。",
    "県民の参画を広げ、事業の担い手を育てる。",
    "実施体制を柔軟にし、経費の削減と効果の向上を両立させる。",
    "地域の団体・企業と連携し、継続的な取組につなげる。",
]
CONSULTATION_NOTES = [
    "提案内容の説明と事業の現状確認",
    "役割分担と必要経費の検討",
    "実施時期と成果指標の確認",
    "関係課を交えた実施方法の調整",
]
DECISION_REASONS = {
    Decision.ADOPTED: [
        "提案の趣旨を踏まえ、協働により実施する。",
        "CSOの専門性が生かせることから、提案どおり実施する。",
    ],
    Decision.PARTIALLY_ADOPTED: [
        "提案のうち、啓発・情報発信の部分について協働により実施する。",
        "提案の一部について、次年度の事業に取り入れる。",
    ],
    Decision.NOT_ADOPTED: [
        "既存の事業で対応しており、新たに実施することは困難。",
        "法令上、県が直接実施する必要があるため。",
        "費用対効果の観点から、現時点での実施は見送る。",
    ],
    Decision.NOTED: [
        "今後の事業実施の参考とする。",
        "御意見として承り、関係課と共有する。",
    ],
}
ASSESSMENT_SUMMARIES = [
    "参加者{n}名。当初の目標を上回り、次年度も継続して実施する。",
    "延べ{n}名が利用。相談件数が前年度から増加し、支援の裾野が広がった。",
    "講座修了者{n}名のうち半数が地域活動に参加。担い手育成の成果が見られた。",
    "{n}団体が参画するネットワークが発足。情報共有の場が定着した。",
    "利用者アンケートで満足度が高く、{n}件の改善提案が寄せられた。",
]
WITHDRAW_NOTES = [
    "提案団体の事情により取り下げ。",
    "提案団体の体制が整わないため取り下げ。",
    "他の事業で対応することとなったため取り下げ。",
]
ORIENTATION_VENUES = [
    "佐賀県庁 新館大会議室",
    "アバンセ(佐賀県立男女共同参画センター)",
    "唐津市民交流プラザ",
    "武雄市文化会館",
    "鳥栖市民文化会館",
    "伊万里市民センター",
]

# Proposals from the source document, placed in the years they fit; they count towards the
# seed's figures like any other adopted CSO proposal.
FEATURED = [
    {
        "fiscal_year": 2006,
        "organization": "NPO法人 さが市民活動サポートセンター",
        "received_on": dt.date(2006, 6, 12),
        "title": "県庁「さが元気ひろば」総合案内窓口の運営",
        "summary": "県庁1階の総合案内窓口の運営をCSOが担い、来庁者への案内と県民活動の情報提供を"
        "一体的に行う。",
        "budget": Budget.YES,
        "contract": ("commission", 3_600_000),
    },
    {
        "fiscal_year": 2007,
        "organization": "さがん福祉エンタープライズ共同企業体",
        "received_on": dt.date(2007, 7, 3),
        "title": "庁内文書逓送業務への障害者就労施設の参入(共同企業体方式による入札参加)",
        "summary": "特別送達の許可を持つ障害者就労施設4か所が共同企業体を組み、庁内逓送業務の"
        "入札に参加できるようにする。障害のある人の就労と社会参加を進める。",
        "budget": Budget.YES,
        "contract": ("commission", 8_400_000),
    },
    {
        "fiscal_year": 2012,
        "organization": "公益財団法人 佐賀未来創造基金",
        # Received in March 2013: still FY2012.
        "received_on": dt.date(2013, 3, 8),
        "title": "オールさが市民ファンドの創設",
        "summary": "県内の中間支援組織等で構成する財団が、地域課題の解決に取り組むCSOへの寄附を"
        "県民に呼びかけ、協働提案で採用されながら予算化されない事業を支える。",
        "budget": Budget.NO,
        "contract": None,
    },
    {
        "fiscal_year": 2013,
        "organization": "NPO法人 佐賀県難病支援ネットワーク",
        "received_on": dt.date(2013, 6, 20),
        "title": "難病サポーターズクラブの創設",
        "summary": "難病のある人の雇用を支えるため、企業同士が情報交換するネットワーク"
        "(サポーターズクラブ)をつくり、病気を打ち明けやすく働き続けやすい地域を目指す。",
        "budget": Budget.YES,
        "contract": ("joint", None),
    },
]

# Month weights for received dates: most letters arrive after the catalogue is published in
# spring, a trickle through winter (February and March included, so the FY boundary matters).
RECEIPT_MONTH_WEIGHTS = {
    4: 5, 5: 12, 6: 15, 7: 15, 8: 12, 9: 9, 10: 8, 11: 7, 12: 5, 1: 4, 2: 4, 3: 4,
}  # fmt: skip


def _rng(*parts: object) -> random.Random:
    """A generator of its own for each part of the plan, so one part never shifts another."""
    return random.Random(":".join([SEED, *map(str, parts)]))


def jis_check_digit(first_five: str) -> int:
    """The JIS X 0402 check digit of a local government code's first five digits."""
    remainder = sum(w * int(d) for w, d in zip((6, 5, 4, 3, 2), first_five, strict=True)) % 11
    return (11 - remainder) % 10


def _japan_today() -> dt.date:
    return timezone.now().astimezone(JAPAN).date()


# ---------------------------------------------------------------------------------------------
# Plans: plain records, no database
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedOrganization:
    name: str
    kind: str
    home_code: str | None = None  # the municipality it mostly works in, if any
    field: str = ""  # a key of CSO_FIELDS; empty: proposes on anything


@dataclass(frozen=True)
class PlannedOperation:
    body_code: str
    department: str
    code: str
    title: str
    summary: str
    budget_yen: int
    current_provider: str
    collaboration_potential: str
    published_on: dt.date


@dataclass
class PlannedProposal:
    """One proposal and the steps it goes through, in order; dates are never after today."""

    fiscal_year: int
    body_code: str
    organization: str
    received_on: dt.date
    title: str
    summary: str
    operation_code: str | None = None
    consultations: list[tuple[dt.date, str]] = field(default_factory=list)
    decision: str = ""  # empty: still pending
    decided_on: dt.date | None = None
    reason: str = ""
    planned_year: int | None = None
    budget: str = ""  # empty: left at the default (pending)
    contract: tuple[str, dt.date, int | None] | None = None
    assessment: tuple[dt.date, str] | None = None
    withdraw_note: str = ""
    reference: str = ""


def plan_organizations() -> list[PlannedOrganization]:
    """The featured CSOs, a pool of generated CSO names (unique), then the non-CSO proposers."""
    rng = _rng("organizations")
    orgs = [PlannedOrganization(f["organization"], CSO) for f in FEATURED]
    names = {o.name for o in orgs}
    forms, form_weights = zip(*CSO_FORMS, strict=True)
    while len(orgs) < len(FEATURED) + CSO_POOL_SIZE:
        place, home = rng.choice(CSO_PLACES)
        field_name = rng.choice(list(CSO_FIELDS))
        theme = rng.choice(CSO_FIELDS[field_name][0])
        form = rng.choices(forms, form_weights)[0]
        if not form and not theme.endswith("会"):
            # Only "…の会"-style names read naturally without a legal form.
            form = "NPO法人 "
        name = f"{form}{place}{theme}"
        if name not in names:
            names.add(name)
            orgs.append(PlannedOrganization(name, CSO, home, field_name))
    orgs += [PlannedOrganization(name, kind) for name, kind in NON_CSO_ORGANIZATIONS]
    return orgs


def plan_departments() -> dict[str, list[tuple[str, list[str], list[str]]]]:
    """Departments per body code: all of the prefecture's, five to seven per municipality."""
    plan = {PREFECTURE[0]: PREFECTURE_DEPARTMENTS}
    for code, name in MUNICIPALITIES:
        rng = _rng("departments", code)
        picked = rng.sample(MUNICIPAL_DEPARTMENTS, rng.randint(5, 7))
        is_city = name.endswith("市")
        plan[code] = [
            # 協働推進課 reads 市民協働課 in a city and まちづくり推進課 in a town.
            (
                ("市民協働課" if is_city else "まちづくり推進課") if dept == "協働推進課" else dept,
                topics,
                targets,
            )
            for dept, topics, targets in sorted(picked)
        ]
    return plan


def participating_codes(fiscal_year: int) -> list[str]:
    """The municipalities taking part in a fiscal year (none before FY2009)."""
    if fiscal_year < FIRST_MUNICIPAL_YEAR:
        return []
    n = PARTICIPATION_COUNTS.get(fiscal_year, LATER_PARTICIPATION)
    rng = _rng("participation", fiscal_year)
    core, rest = PARTICIPATION_ORDER[: n - 2], PARTICIPATION_ORDER[n - 2 :]
    return sorted(core + rng.sample(rest, 2))


def _budget_yen(rng: random.Random, low: int, high: int) -> int:
    """Log-uniform between low and high, in whole thousands of yen as budgets are written."""
    value = math.exp(rng.uniform(math.log(low), math.log(high)))
    return max(1_000, round(value / 1_000) * 1_000)


def plan_operations(fiscal_year: int, today: dt.date) -> list[PlannedOperation]:
    """The catalogue of one fiscal year: the prefecture's and the participating municipalities'.

    Titles are topic × activity (e.g. 食品ロス削減啓発事業), unique within a body.
    """
    departments = plan_departments()
    operations: list[PlannedOperation] = []
    bodies = [(PREFECTURE[0], PREFECTURE_OPERATIONS, "県")]
    for code in participating_codes(fiscal_year):
        rng = _rng("operations-size", fiscal_year, code)
        suffix = "市" if MUNICIPALITY_NAMES[code].endswith("市") else "町"
        bodies.append((code, rng.randint(*MUNICIPAL_OPERATIONS), suffix))
    for body_code, count, suffix in bodies:
        rng = _rng("operations", fiscal_year, body_code)
        combos = [
            (d_index, topic, activity)
            for d_index, (_, topics, _) in enumerate(departments[body_code])
            for topic in topics
            for activity in ACTIVITIES
            # Skip doubled words such as 「…計画計画策定事業」.
            if activity[0][:2] not in topic
        ]
        chosen = sorted(rng.sample(combos, min(count, len(combos))), key=lambda c: c[0])
        # Municipal budgets run about a tenth of the prefecture's.
        scale = 1 if body_code == PREFECTURE[0] else 10
        # The catalogue is published in spring; a body that has not published yet by today
        # would have nothing to show, so the date is clamped rather than the rows left out.
        first, _ = fiscal_year_bounds(fiscal_year)
        published = min(first + dt.timedelta(days=rng.randint(35, 70)), today)
        seq: dict[int, int] = defaultdict(int)
        for d_index, topic, (activity, template) in chosen:
            department, _, targets = departments[body_code][d_index]
            seq[d_index] += 1
            provider = rng.choices(*zip(*PROVIDERS, strict=True))[0]
            if provider.startswith("直営"):
                provider = f"{suffix}{provider}"  # 県直営(職員), 市直営(職員) …
            high = (300_000_000 if activity == "補助事業" else 60_000_000) // scale
            operations.append(
                PlannedOperation(
                    body_code=body_code,
                    department=department,
                    code=f"{fiscal_year}-{d_index + 1:02d}-{seq[d_index]:03d}",
                    title=f"{topic}{activity}",
                    summary=template.format(topic=topic, target=rng.choice(targets)),
                    budget_yen=_budget_yen(rng, 300_000 // scale, high),
                    current_provider=provider,
                    collaboration_potential=rng.choice(COLLABORATION_POTENTIAL),
                    published_on=published,
                )
            )
    return operations


def _received_on(rng: random.Random, fiscal_year: int, today: dt.date) -> dt.date:
    """A receipt date in the fiscal year, weighted by month, never after today."""
    first, last = fiscal_year_bounds(fiscal_year)
    last = min(last, today)
    months = list(_months(first, last))
    weights = [RECEIPT_MONTH_WEIGHTS[m] for _, m in months]
    year, month = rng.choices(months, weights)[0]
    last_day = calendar.monthrange(year, month)[1]
    if (year, month) == (last.year, last.month):
        last_day = last.day
    return dt.date(year, month, rng.randint(1, last_day))


def _months(first: dt.date, last: dt.date):
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _spread(rng: random.Random, items: int, bins: int) -> list[int]:
    """Split items over bins, each at least one: a few prolific proposers and a long tail."""
    counts = [1] * bins
    weights = [1 / (i + 1) for i in range(bins)]
    for _ in range(items - bins):
        counts[rng.choices(range(bins), weights)[0]] += 1
    return counts


@dataclass
class _Draft:
    """A proposal before dates and texts: who, to whom, and how it ends."""

    body_code: str
    organization: PlannedOrganization
    outcome: str  # a Decision value, "pending", or "withdrawn"
    featured: dict | None = None


def _level_size(rng: random.Random, fiscal_year: int, level: str):
    """(organisations, proposals, adopted) for a year and level: the seed's, or plausible ones."""
    if (fiscal_year, level) in SEED_STATISTICS:
        return SEED_STATISTICS[(fiscal_year, level)]
    # Sizes depend on the year alone (not on which year is current), so a year's plan, and
    # hence its references, stay the same after the fiscal year rolls over.
    recent = fiscal_year >= BUSY_YEARS_FROM
    if level == PREF:
        proposals = rng.randint(45, 60) if recent else rng.randint(20, 40)
        rate = rng.uniform(0.70, 0.92)
    else:
        proposals = rng.randint(20, 28) if recent else rng.randint(8, 20)
        rate = rng.uniform(0.40, 0.75)
    organizations = max(1, round(proposals * rng.uniform(0.45, 0.7)))
    return organizations, proposals, round(proposals * rate)


def _pick_body(
    rng: random.Random, level: str, org: PlannedOrganization, participants: list[str]
) -> str:
    """The prefecture, or for the municipal level mostly the organisation's home town."""
    if level == PREF:
        return PREFECTURE[0]
    if org.home_code in participants and rng.random() < 0.75:
        return org.home_code
    return rng.choice(participants)


def _drafts_for_level(
    rng: random.Random,
    fiscal_year: int,
    level: str,
    current_fy: int,
    cso_pool: list[PlannedOrganization],
    non_cso: list[PlannedOrganization],
    participants: list[str],
) -> list[_Draft]:
    """The year's proposals to one level: counted CSO ones, then the ones the rules exclude."""
    n_orgs, n_proposals, n_adopted = _level_size(rng, fiscal_year, level)
    featured = [f for f in FEATURED if f["fiscal_year"] == fiscal_year and level == PREF]
    by_name = {o.name: o for o in cso_pool}
    pinned = [by_name[f["organization"]] for f in featured]
    # Featured organisations appear only with their featured proposal.
    featured_names = {f["organization"] for f in FEATURED}
    others = [o for o in cso_pool if o.name not in featured_names]
    orgs = pinned + rng.sample(others, n_orgs - len(pinned))

    # Outcomes of the counted proposals: exactly n_adopted adopted (15–30% of them partially),
    # the rest not adopted or noted. In the previous year a few are still in consultation; in
    # the current year, the ones whose decision would fall after today are (see _steps).
    n_partial = round(n_adopted * rng.uniform(0.15, 0.3))
    rest = n_proposals - n_adopted
    # Drawn every year so that the draws, and so the plan of a year, do not change when the
    # fiscal year rolls over.
    drawn_pending = rng.randint(2, 4)
    n_pending = min(rest, drawn_pending) if fiscal_year == current_fy - 1 else 0
    n_noted = round((rest - n_pending) * rng.uniform(0.3, 0.5))
    outcomes = (
        [Decision.PARTIALLY_ADOPTED] * n_partial
        + [Decision.ADOPTED] * (n_adopted - n_partial - len(featured))
        + [Decision.NOTED] * n_noted
        + [Decision.NOT_ADOPTED] * (rest - n_pending - n_noted)
        + ["pending"] * n_pending
    )
    rng.shuffle(outcomes)

    drafts = [
        _Draft(PREFECTURE[0], by_name[f["organization"]], Decision.ADOPTED, featured=f)
        for f in featured
    ]
    counts = _spread(rng, n_proposals, n_orgs)
    counts[: len(featured)] = [c - 1 for c in counts[: len(featured)]]
    for org, count in zip(orgs, counts, strict=True):
        for _ in range(count):
            drafts.append(_Draft(_pick_body(rng, level, org, participants), org, outcomes.pop()))
    assert not outcomes

    # Withdrawn proposals: some from organisations that made no other proposal that year, so a
    # rule counting withdrawn ones would show in the number of organisations too.
    historical = (fiscal_year, level) in SEED_STATISTICS
    outsiders = [o for o in others if o not in orgs]
    for _ in range(rng.randint(1, 3) if historical else rng.randint(0, 2)):
        org = rng.choice(orgs if rng.random() < 0.5 else outsiders)
        drafts.append(_Draft(_pick_body(rng, level, org, participants), org, "withdrawn"))
    # Companies, universities and others propose too; the statistics count CSOs by default.
    for _ in range(rng.randint(1, 3) if level == PREF else rng.randint(0, 2)):
        org = rng.choice(non_cso)
        outcome = rng.choices(
            [Decision.ADOPTED, Decision.PARTIALLY_ADOPTED, Decision.NOT_ADOPTED, Decision.NOTED],
            [4, 1, 3, 2],
        )[0]
        drafts.append(_Draft(_pick_body(rng, level, org, participants), org, outcome))
    return drafts


def _budget_for(rng: random.Random, fiscal_year: int, current_fy: int) -> str:
    """Budget provision of an adopted proposal: settled for old years, open for recent ones.

    In the current and previous years many adopted proposals have no budget: these are the
    ones the civic fund can list.
    """
    if fiscal_year >= current_fy:
        weights = [15, 50, 35]
    elif fiscal_year == current_fy - 1:
        weights = [35, 50, 15]
    else:
        weights = [65, 30, 5]
    return rng.choices([Budget.YES, Budget.NO, Budget.PENDING], weights)[0]


def _title_and_summary(
    rng: random.Random,
    draft: _Draft,
    body_name: str,
    operations: list[PlannedOperation],
) -> tuple[str, str, str | None]:
    if draft.featured:
        return draft.featured["title"], draft.featured["summary"], None
    subjects, department_words = ALL_SUBJECTS, []
    if draft.organization.field:
        _, subjects, department_words = CSO_FIELDS[draft.organization.field]
    # A CSO looks first at the operations of divisions (課, the last word) in its own field.
    own_field = [
        op for op in operations if any(w in op.department.split()[-1] for w in department_words)
    ]
    operations = own_field or operations
    if operations and rng.random() < 0.6:
        op = rng.choice(operations)
        title = f"{op.title}{rng.choice(OPERATION_APPROACHES)}"
        summary = f"{body_name}の「{op.title}」について提案する。{rng.choice(PROPOSAL_BENEFITS)}"
        return title, summary, op.code
    title = f"{rng.choice(subjects)}{rng.choice(PROPOSAL_SUFFIXES)}"
    summary = f"新規事業として{body_name}に提案する。{rng.choice(PROPOSAL_BENEFITS)}"
    return title, summary, None


def _dates_between(rng: random.Random, start: dt.date, end: dt.date, k: int) -> list[dt.date]:
    span = (end - start).days
    if span < 1:
        return []
    return sorted(start + dt.timedelta(days=rng.randint(1, span)) for _ in range(k))


def _steps(rng: random.Random, p: PlannedProposal, draft: _Draft, current_fy: int, today):
    """Fill in the steps after receipt; anything that would be dated after today is left out."""
    fy = p.fiscal_year
    outcome = draft.outcome
    decides = outcome not in ("pending", "withdrawn") or (
        outcome == "withdrawn" and rng.random() < 0.3
    )
    decided_on = p.received_on + dt.timedelta(days=rng.randint(30, 120))
    if decides and decided_on > today:
        decides = False
    horizon = decided_on if decides else min(p.received_on + dt.timedelta(days=90), today)
    n_consult = rng.choices([0, 1, 2, 3], [2, 4, 3, 1])[0]
    if outcome == "pending" and n_consult == 0:
        n_consult = 1
    p.consultations = [
        (held_on, f"第{i}回協議:{CONSULTATION_NOTES[(i - 1) % len(CONSULTATION_NOTES)]}")
        for i, held_on in enumerate(_dates_between(rng, p.received_on, horizon, n_consult), 1)
    ]
    if outcome == "withdrawn":
        p.withdraw_note = rng.choice(WITHDRAW_NOTES)
        if decides:
            # Withdrawn after the response: the decision is replaced by "withdrawn".
            p.decision, p.decided_on = Decision.ADOPTED, decided_on
            p.reason = rng.choice(DECISION_REASONS[Decision.ADOPTED])
            p.planned_year = fy + 1
        return
    if not decides:
        return
    p.decision = outcome
    p.decided_on = decided_on
    p.reason = rng.choice(DECISION_REASONS[outcome])
    p.planned_year = fy + 1 if rng.random() < 0.7 else fy
    if outcome not in Proposal.ADOPTED_DECISIONS:
        return

    featured = draft.featured
    p.budget = featured["budget"] if featured else _budget_for(rng, fy, current_fy)
    contract = None
    if featured:
        if featured["contract"]:
            contract = featured["contract"]
    elif p.budget == Budget.YES and rng.random() < 0.8:
        kind = rng.choices(["commission", "subsidy", "other"], [6, 3, 1])[0]
        contract = (kind, rng.randrange(300, 6_000) * 1_000)
    elif p.budget == Budget.NO and rng.random() < 0.15:
        contract = ("joint", None)  # a joint project needs no budget of its own

    if p.planned_year == fy:
        signed_on = decided_on + dt.timedelta(days=rng.randint(14, 60))
    else:
        signed_on = max(
            dt.date(fy + 1, 4, 1) + dt.timedelta(days=rng.randint(0, 75)),
            decided_on + dt.timedelta(days=7),
        )
    assessed_on = max(
        dt.date(p.planned_year + 1, rng.choice([5, 6, 7]), rng.randint(1, 28)),
        signed_on + dt.timedelta(days=30),
    )
    if contract and signed_on <= today:
        p.contract = (contract[0], signed_on, contract[1])
    assess = (p.contract and rng.random() < 0.75) or (
        not contract and p.budget == Budget.NO and rng.random() < 0.1
    )
    if assess and assessed_on <= today:
        text = rng.choice(ASSESSMENT_SUMMARIES).format(n=rng.randint(12, 480))
        p.assessment = (assessed_on, text)


def plan_proposals(
    *, today: dt.date, current_fy: int, operations: list[PlannedOperation]
) -> list[PlannedProposal]:
    """Every proposal from FY2006 to the current fiscal year, with references assigned.

    References number a year's proposals in order of receipt (SAGA-2006-0001, …).
    """
    orgs = plan_organizations()
    cso_pool = [o for o in orgs if o.kind == CSO]
    non_cso = [o for o in orgs if o.kind != CSO]
    body_names = {PREFECTURE[0]: PREFECTURE[1], **MUNICIPALITY_NAMES}
    ops_by_body: dict[str, list[PlannedOperation]] = defaultdict(list)
    for op in operations:
        ops_by_body[op.body_code].append(op)

    planned: list[PlannedProposal] = []
    for fy in range(FIRST_FISCAL_YEAR, current_fy + 1):
        rng = _rng("proposals", fy)
        participants = participating_codes(fy)
        levels = [PREF] if fy < FIRST_MUNICIPAL_YEAR else [PREF, MUNI]
        drafts = []
        for level in levels:
            drafts += _drafts_for_level(rng, fy, level, current_fy, cso_pool, non_cso, participants)
        year = []
        for draft in drafts:
            # Only this year's catalogue is loaded; older proposals are new projects.
            ops = ops_by_body[draft.body_code] if fy == current_fy else []
            title, summary, op_code = _title_and_summary(
                rng, draft, body_names[draft.body_code], ops
            )
            received = (
                draft.featured["received_on"] if draft.featured else _received_on(rng, fy, today)
            )
            p = PlannedProposal(
                fiscal_year=fy,
                body_code=draft.body_code,
                organization=draft.organization.name,
                received_on=received,
                title=title,
                summary=summary,
                operation_code=op_code,
            )
            _steps(rng, p, draft, current_fy, today)
            year.append(p)
        # Stable sort: ties keep planning order, so numbering is the same on every run.
        year.sort(key=lambda p: p.received_on)
        for n, p in enumerate(year, 1):
            p.reference = f"{REFERENCE_PREFIX}-{fy}-{n:04d}"
        planned += year
    return planned


def plan_orientation_sessions(
    current_fy: int, today: dt.date
) -> list[tuple[int, dt.date, str, int]]:
    """Step 3: two or three prefectural sessions a year, in late spring, none after today."""
    sessions = []
    for fy in range(FIRST_FISCAL_YEAR, current_fy + 1):
        rng = _rng("orientation", fy)
        for venue in rng.sample(ORIENTATION_VENUES, rng.randint(2, 3)):
            held_on = dt.date(fy, rng.choice([5, 6]), rng.randint(1, 28))
            if held_on <= today:
                sessions.append((fy, held_on, venue, rng.randint(25, 140)))
    return sessions


# ---------------------------------------------------------------------------------------------
# Applying the plans: create what is missing, skip what exists
# ---------------------------------------------------------------------------------------------


def load_bodies() -> tuple[dict[str, GovernmentBody], int]:
    """The prefecture and its municipalities, by code. Existing rows are left as they are."""
    bodies, created = {}, 0
    rows = [(*PREFECTURE, PREF)] + [(code, name, MUNI) for code, name in MUNICIPALITIES]
    for code, name, kind in rows:
        assert jis_check_digit(code[:5]) == int(code[5]), code
        bodies[code], was_created = GovernmentBody.objects.get_or_create(
            code=code, defaults={"name": name, "kind": kind}
        )
        created += was_created
    return bodies, created


def load_departments(bodies: dict[str, GovernmentBody]) -> tuple[dict[tuple[str, str], int], int]:
    """Departments of every body; returns (body code, name) → id and the number created."""
    wanted = {(code, name) for code, depts in plan_departments().items() for name, _, _ in depts}
    existing = _department_ids(bodies)
    missing = sorted(wanted - existing.keys())
    Department.objects.bulk_create(Department(body=bodies[c], name=n) for c, n in missing)
    return (_department_ids(bodies) if missing else existing), len(missing)


def _department_ids(bodies: dict[str, GovernmentBody]) -> dict[tuple[str, str], int]:
    rows = Department.objects.filter(body__in=bodies.values()).values_list(
        "body__code", "name", "id"
    )
    return {(code, name): pk for code, name, pk in rows}


def load_participation(bodies: dict[str, GovernmentBody], current_fy: int) -> int:
    existing = set(Participation.objects.values_list("fiscal_year", "body__code"))
    missing = [
        Participation(fiscal_year=fy, body=bodies[code])
        for fy in range(FIRST_MUNICIPAL_YEAR, current_fy + 1)
        for code in participating_codes(fy)
        if (fy, code) not in existing
    ]
    Participation.objects.bulk_create(missing)
    return len(missing)


def load_operations(
    bodies: dict[str, GovernmentBody],
    departments: dict[tuple[str, str], int],
    fiscal_year: int,
    planned: list[PlannedOperation],
) -> int:
    """The catalogue: catalogue rows, not state changes, so bulk-created; skips existing codes."""
    existing = set(
        Operation.objects.filter(fiscal_year=fiscal_year).values_list("body__code", "code")
    )
    missing = [
        Operation(
            fiscal_year=fiscal_year,
            body=bodies[op.body_code],
            department_id=departments[(op.body_code, op.department)],
            code=op.code,
            title=op.title,
            summary=op.summary,
            budget_yen=op.budget_yen,
            current_provider=op.current_provider,
            collaboration_potential=op.collaboration_potential,
            published_on=op.published_on,
        )
        for op in planned
        if (op.body_code, op.code) not in existing
    ]
    Operation.objects.bulk_create(missing, batch_size=500)
    return len(missing)


def load_organizations() -> tuple[dict[str, Organization], int]:
    """Organisations by name; an existing one keeps its kind."""
    planned = plan_organizations()
    existing = set(
        Organization.objects.filter(name__in=[o.name for o in planned]).values_list(
            "name", flat=True
        )
    )
    missing = [Organization(name=o.name, kind=o.kind) for o in planned if o.name not in existing]
    Organization.objects.bulk_create(missing)
    orgs = Organization.objects.filter(name__in=[o.name for o in planned]).in_bulk(
        field_name="name"
    )
    return orgs, len(missing)


def load_orientation_sessions(prefecture: GovernmentBody, current_fy: int, today) -> int:
    existing = set(
        OrientationSession.objects.filter(body=prefecture).values_list("held_on", "venue")
    )
    missing = [
        OrientationSession(
            body=prefecture, fiscal_year=fy, held_on=held_on, venue=venue, attendance=attendance
        )
        for fy, held_on, venue, attendance in plan_orientation_sessions(current_fy, today)
        if (held_on, venue) not in existing
    ]
    OrientationSession.objects.bulk_create(missing)
    return len(missing)


def load_proposals(
    planned: list[PlannedProposal],
    bodies: dict[str, GovernmentBody],
    orgs: dict[str, Organization],
    current_fy: int,
) -> int:
    """Create each missing proposal and walk it through its steps with the services.

    Each step is a state change with history, so nothing here writes a proposal directly.
    """
    existing = set(
        Proposal.objects.filter(reference__startswith=f"{REFERENCE_PREFIX}-").values_list(
            "reference", flat=True
        )
    )
    todo = [p for p in planned if p.reference not in existing]
    if not todo:
        return 0
    operations = {
        (op.body.code, op.code): op
        for op in Operation.objects.filter(fiscal_year=current_fy).select_related("body")
    }
    system = {"actor": None, "source": SOURCE}
    for p in todo:
        proposal = services.proposal_create(
            reference=p.reference,
            received_on=p.received_on,
            body=bodies[p.body_code],
            organization=orgs[p.organization],
            title=p.title,
            summary=p.summary,
            operation=operations[(p.body_code, p.operation_code)] if p.operation_code else None,
            **system,
        )
        for held_on, notes in p.consultations:
            proposal = services.proposal_transition(
                proposal=proposal, action="consult", held_on=held_on, notes=notes, **system
            )
        if p.decision:
            proposal = services.proposal_transition(
                proposal=proposal,
                action="respond",
                decision=p.decision,
                decided_on=p.decided_on,
                reason=p.reason,
                planned_implementation_year=p.planned_year,
                **system,
            )
        if p.budget:
            proposal = services.proposal_set_budget_provision(
                proposal=proposal, budget_provision=p.budget, **system
            )
        if p.contract:
            kind, signed_on, amount = p.contract
            proposal = services.proposal_transition(
                proposal=proposal,
                action="contract",
                kind=kind,
                signed_on=signed_on,
                amount_yen=amount,
                **system,
            )
        if p.assessment:
            assessed_on, summary = p.assessment
            proposal = services.proposal_transition(
                proposal=proposal,
                action="assess",
                assessed_on=assessed_on,
                summary=summary,
                **system,
            )
        if p.withdraw_note:
            services.proposal_transition(
                proposal=proposal, action="withdraw", note=p.withdraw_note, **system
            )
    return len(todo)


@transaction.atomic
def load_register_demo(*, stdout: TextIO | None = None, today: dt.date | None = None) -> dict:
    """Load the register's demo data; safe to run again. Returns what was created, by kind.

    ``today`` (Japan date) defaults to now; the current fiscal year is the one it falls in.
    """
    if today is None:
        today, current_fy = _japan_today(), current_fiscal_year()
    else:
        current_fy = fiscal_year_of(today)

    def say(message: str) -> None:
        if stdout is not None:
            stdout.write(message + "\n")

    bodies, n_bodies = load_bodies()
    departments, n_departments = load_departments(bodies)
    n_participations = load_participation(bodies, current_fy)
    planned_operations = plan_operations(current_fy, today)
    n_operations = load_operations(bodies, departments, current_fy, planned_operations)
    say(f"Catalogue FY{current_fy}: {len(planned_operations)} operations ({n_operations} new)")
    orgs, n_orgs = load_organizations()
    n_sessions = load_orientation_sessions(bodies[PREFECTURE[0]], current_fy, today)

    planned = plan_proposals(today=today, current_fy=current_fy, operations=planned_operations)
    events_before = ProposalEvent.objects.count()
    n_proposals = load_proposals(planned, bodies, orgs, current_fy)
    say(f"Proposals FY{FIRST_FISCAL_YEAR}–FY{current_fy}: {len(planned)} ({n_proposals} new)")
    return {
        "bodies": n_bodies,
        "departments": n_departments,
        "participations": n_participations,
        "operations": n_operations,
        "organizations": n_orgs,
        "orientation_sessions": n_sessions,
        "proposals": n_proposals,
        "proposal_events": ProposalEvent.objects.count() - events_before,
    }
