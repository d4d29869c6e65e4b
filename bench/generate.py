"""A realistic, deterministic decision file for benchmarks: 31 provinces, N decisions.

    python bench/generate.py --decisions 1000000 --seed 1 -o national.jsonl

What it writes, in file order (every line valid per DECISIONS.md; every institution, physician and
technology a line names is registered earlier in the file, effective on or before that line):

1. the shipped reference catalogues (``plugins/*/data/catalog.jsonl``: the national lists 2009–2022
   and Hunan's S01–S29), verbatim, so the file imports into an empty ledger (and is a no-op for
   those lines in a ledger that already holds them: import is idempotent by id);
2. provincial catalogues for the 29 provinces without a plugin (catalog ``p<GB code>``, e.g.
   ``p11:S01`` for Beijing; Chongqing's plugin ships none and uses the national list), listed in
   November 2018 under MTM-2018#9;
3. institutions (≈38,000 for a national ledger of 10M decisions, scaled with N: 0.38% of the lines;
   a province's share follows its real number of hospitals), registered 1990–2012;
4. physicians (8% of the lines), registered 2000–2017 at an institution;
5. privileges granted to the physicians who will report cases (Nov–Dec 2018);
6. month by month from 2019-01 to 2025-12: for each institution's use of a restricted technology,
   the management and ethics reviews, the first case, the filing (≈10% late, ≈5% never filed, ≈5%
   rejected then filed again), case-by-case reports (the bulk, ≈80% of the lines), suspensions and
   resumptions, stops, training bases (some filed late) and their certified trainees, technical
   audits; and across institutions, inspections, orders to correct, penalties, deregistrations,
   privilege suspensions and revocations, national evaluation panels, corrections and retractions
   of earlier lines, a few cases of a prohibited technology;
7. case reports of December 2025 until the file has exactly N lines.

Deterministic per seed (one ``random.Random``, a fixed iteration order, no set or hash order).
Streams: memory holds a few small arrays per institution and per use (≈0.4% and ≈0.8% of N
entries), never the lines written.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_FILES = (ROOT / "plugins/national/data/catalog.jsonl", ROOT / "plugins/hunan/data/catalog.jsonl")

# (GB code, name, abbreviation, cities or districts, hospitals nationally (≈ 2023 statistics))
PROVINCES: tuple[tuple[int, str, str, tuple[str, ...], int], ...] = (
    (11, "北京市", "BJ", ("东城区", "西城区", "朝阳区", "海淀区"), 700),
    (12, "天津市", "TJ", ("和平区", "河西区", "南开区", "滨海新区"), 450),
    (13, "河北省", "HE", ("石家庄市", "唐山市", "保定市", "邯郸市"), 2400),
    (14, "山西省", "SX", ("太原市", "大同市", "长治市", "运城市"), 1400),
    (15, "内蒙古自治区", "NM", ("呼和浩特市", "包头市", "赤峰市", "鄂尔多斯市"), 800),
    (21, "辽宁省", "LN", ("沈阳市", "大连市", "鞍山市", "锦州市"), 1400),
    (22, "吉林省", "JL", ("长春市", "吉林市", "四平市", "延边朝鲜族自治州"), 800),
    (23, "黑龙江省", "HL", ("哈尔滨市", "齐齐哈尔市", "牡丹江市", "大庆市"), 1200),
    (31, "上海市", "SH", ("黄浦区", "徐汇区", "浦东新区", "闵行区"), 450),
    (32, "江苏省", "JS", ("南京市", "苏州市", "无锡市", "徐州市"), 2100),
    (33, "浙江省", "ZJ", ("杭州市", "宁波市", "温州市", "金华市"), 1500),
    (34, "安徽省", "AH", ("合肥市", "芜湖市", "蚌埠市", "安庆市"), 1300),
    (35, "福建省", "FJ", ("福州市", "厦门市", "泉州市", "漳州市"), 700),
    (36, "江西省", "JX", ("南昌市", "赣州市", "九江市", "上饶市"), 1000),
    (37, "山东省", "SD", ("济南市", "青岛市", "烟台市", "临沂市"), 2700),
    (41, "河南省", "HA", ("郑州市", "洛阳市", "南阳市", "新乡市"), 2500),
    (42, "湖北省", "HB", ("武汉市", "宜昌市", "襄阳市", "荆州市"), 1200),
    (43, "湖南省", "HN", ("长沙市", "株洲市", "湘潭市", "衡阳市"), 1800),
    (44, "广东省", "GD", ("广州市", "深圳市", "佛山市", "东莞市"), 1800),
    (45, "广西壮族自治区", "GX", ("南宁市", "柳州市", "桂林市", "玉林市"), 800),
    (46, "海南省", "HI", ("海口市", "三亚市", "儋州市"), 280),
    (50, "重庆市", "CQ", ("渝中区", "江北区", "沙坪坝区", "万州区"), 900),
    (51, "四川省", "SC", ("成都市", "绵阳市", "南充市", "宜宾市"), 2500),
    (52, "贵州省", "GZ", ("贵阳市", "遵义市", "六盘水市", "毕节市"), 1500),
    (53, "云南省", "YN", ("昆明市", "曲靖市", "大理白族自治州", "红河哈尼族彝族自治州"), 1400),
    (54, "西藏自治区", "XZ", ("拉萨市", "日喀则市", "昌都市"), 180),
    (61, "陕西省", "SN", ("西安市", "宝鸡市", "咸阳市", "汉中市"), 1300),
    (62, "甘肃省", "GS", ("兰州市", "天水市", "酒泉市"), 700),
    (63, "青海省", "QH", ("西宁市", "海东市"), 230),
    (64, "宁夏回族自治区", "NX", ("银川市", "石嘴山市", "吴忠市"), 220),
    (65, "新疆维吾尔自治区", "XJ", ("乌鲁木齐市", "克拉玛依市", "喀什地区", "伊犁哈萨克自治州"), 900),
)
PLUGIN_CATALOGS = {"湖南省": "hunan", "重庆市": None}
"""Provinces whose plugin ships the catalogue (Chongqing's is empty: it uses the national list)."""

# Provincial additions (省级增补) are drawn from the kinds of technology provinces really list.
PROVINCIAL_TECHNOLOGIES = (
    "三级及以上呼吸内镜诊疗技术",
    "三级及以上消化内镜诊疗技术",
    "三级及以上普通外科内镜诊疗技术",
    "三级及以上泌尿外科内镜诊疗技术",
    "三级及以上关节镜诊疗技术",
    "三级及以上脊柱内镜诊疗技术",
    "三级及以上胸外科内镜诊疗技术",
    "三级及以上妇科内镜诊疗技术",
    "人工关节置换技术",
    "神经血管介入诊疗技术",
    "三级及以上综合介入诊疗技术",
    "三级及以上外周血管介入诊疗技术",
    "冠心病介入治疗技术",
    "心律失常介入治疗技术",
    "先天性心脏病介入治疗技术",
    "冠状动脉旁路移植技术",
    "三维适形及调强放疗技术",
    "血液净化技术",
    "胎儿镜宫内治疗技术",
    "产前诊断技术",
    "临床基因扩增检验技术",
    "人工耳蜗植入技术",
    "眼底激光治疗技术",
    "颅内肿瘤立体定向放射治疗技术",
    "脑深部电刺激术",
    "腹腔镜下肝切除术",
    "达芬奇机器人辅助手术技术",
    "经导管主动脉瓣置换术",
)
NATIONAL_RESTRICTED = (
    "G01",
    "G02",
    "G03",
    "G04",
    "G06",
    "G07",
    "G08",
    "G10",
    "G11",
    "G13",
    "G16",
    "G17",
)  # in force through 2019–2025 (G05, G09, G12, G14, G15 were delisted on 2022-04-20)
NATIONAL_LATE = {"G16": date(2022, 4, 20), "G17": date(2022, 4, 20)}
PROHIBITED = ("national:P18-02", "national:P18-03", "national:P09-01")

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史黎贺顾毛郝龚邵万钱覃武戴孔汤"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建国志红亮飞晓辉鹏宇浩凯婷雪琳倩峰波斌宁"
TITLES = (("主任医师", 15), ("副主任医师", 25), ("主治医师", 35), ("住院医师", 25))
LEVELS = (("三级", 9), ("二级", 30), ("一级", 35), ("未定级", 26))
CATEGORIES = (
    ("医院", 78, "人民医院"),
    ("中医医院", 12, "中医医院"),
    ("妇幼保健院", 8, "妇幼保健院"),
    ("专科医院", 2, "肿瘤医院"),
)
PROCEDURES = (
    "腹腔镜胆囊切除术",
    "经皮冠状动脉介入治疗",
    "全髋关节置换术",
    "胃镜下黏膜剥离术",
    "清创缝合术",
    "甲状腺切除术",
)
FINDINGS = (
    "病历书写不规范",
    "未按要求逐例报送",
    "知情同意书缺失",
    "技术负责人资质材料不全",
    "质量控制记录缺失",
    "院务公开信息未及时更新",
)
START = date(2019, 1, 1)
MONTHS = 84  # 2019-01 … 2025-12
BASE_YEAR, BASE_MONTH = 2019, 1


def month_start(m: int) -> date:
    y, mo = divmod(BASE_MONTH - 1 + m, 12)
    return date(BASE_YEAR + y, mo + 1, 1)


def month_of(d: date) -> int:
    return (d.year - BASE_YEAR) * 12 + d.month - BASE_MONTH


def era(day: date) -> str:
    """The health authority's name on a day (卫生局 → 卫生和计划生育委员会 2013 → 卫生健康委员会 2018)."""
    if day < date(2013, 6, 1):
        return "卫生局"
    if day < date(2018, 11, 1):
        return "卫生和计划生育委员会"
    return "卫生健康委员会"


@dataclass
class Province:
    index: int
    code: int
    name: str
    abbr: str
    cities: tuple[str, ...]
    catalog: str | None
    techs: list[str]
    authority: str
    seq: int = 0

    def next_id(self, day: date) -> str:
        self.seq += 1
        return f"{self.abbr}-{day.year}-{self.seq:07d}"


class Budget(Exception):
    """Raised when the file has its N lines."""


class Writer:
    def __init__(self, out: IO[str], limit: int) -> None:
        self.out = out
        self.limit = limit
        self.count = 0
        self._dumps = json.JSONEncoder(ensure_ascii=False).encode

    def __call__(self, obj: dict[str, Any]) -> None:
        if self.count >= self.limit:
            raise Budget
        self.out.write(self._dumps(obj))
        self.out.write("\n")
        self.count += 1

    def raw(self, line: str) -> None:
        if self.count >= self.limit:
            raise Budget
        self.out.write(line.rstrip("\n") + "\n")
        self.count += 1


def _weighted(rng: random.Random, table: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    total = sum(row[1] for row in table)
    x = rng.random() * total
    for row in table:
        x -= row[1]
        if x < 0:
            return row
    return table[-1]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _stem(city: str) -> str:
    for suffix in ("朝鲜族自治州", "白族自治州", "哈尼族彝族自治州", "哈萨克自治州", "新区", "地区", "市", "区"):
        if city.endswith(suffix):
            return city[: -len(suffix)]
    return city


class Generator:
    def __init__(self, n: int, seed: int, out: IO[str]) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.w = Writer(out, n)
        self.provinces: list[Province] = []
        # per institution
        self.inst_prov: list[int] = []
        self.inst_id: list[str] = []
        self.inst_reg: list[str] = []
        self.inst_eff: list[int] = []
        self.inst_level: list[str] = []
        self.inst_uses: list[list[int]] = []
        self.by_province: list[list[int]] = []
        # per use
        self.use_inst: list[int] = []
        self.use_tech: list[str] = []
        self.use_start: list[int] = []  # ordinal of the first case
        self.use_rate: list[float] = []
        self.use_submit: list[int] = []  # ordinal, 0: never filed
        self.use_rejected: list[bool] = []
        self.use_stop: list[int] = []  # month index, -1: never
        self.use_susp: list[tuple[int, int]] = []  # (month suspended, month resumed) or (-1, -1)
        self.use_base: list[int] = []  # month a training base is filed, -1: never
        self.n_inst = 0
        self.n_phys = 0
        self.lam = 0.0
        self.case_count = 0

    # --- identities ---------------------------------------------------------------------------

    def physician(self, i: int, k: int) -> str:
        """The licence number of the ``k``-th physician of institution ``i``."""
        j = i + self.n_inst * k
        return f"110{self.provinces[self.inst_prov[i]].code}{j:010d}"

    def physicians_at(self, i: int) -> int:
        return self.n_phys // self.n_inst + (1 if i < self.n_phys % self.n_inst else 0)

    def name(self) -> str:
        rng = self.rng
        given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
        return rng.choice(SURNAMES) + given

    # --- the file -----------------------------------------------------------------------------

    def run(self) -> int:
        try:
            self.reference()
            self.setup()
            self.catalogues()
            self.institutions()
            self.physicians()
            self.privileges()
            self.months()
            self.pad()
        except Budget:
            pass
        return self.w.count

    def reference(self) -> None:
        for path in REFERENCE_FILES:
            with path.open(encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        self.w.raw(line)

    def setup(self) -> None:
        rng, n = self.rng, self.n
        total_hospitals = sum(p[4] for p in PROVINCES)
        n_inst = max(2 * len(PROVINCES), round(n * 0.0038))
        for index, (code, name, abbr, cities, _) in enumerate(PROVINCES):
            catalog = PLUGIN_CATALOGS.get(name, f"p{code}")
            authority = f"{name}卫生健康委员会"
            self.provinces.append(Province(index, code, name, abbr, cities, catalog, [], authority))
        # institutions per province, proportional to hospitals, at least two each
        shares = [max(2, round(n_inst * p[4] / total_hospitals)) for p in PROVINCES]
        self.n_inst = sum(shares)
        self.n_phys = max(self.n_inst, round(n * 0.08))
        for index, share in enumerate(shares):
            self.by_province.append([])
            for _ in range(share):
                self.inst_prov.append(index)
        # spread the provinces' institutions through the index so every prefix mixes provinces
        rng.shuffle(self.inst_prov)
        for i, p in enumerate(self.inst_prov):
            self.by_province[p].append(i)
        national = [f"national:{c}" for c in NATIONAL_RESTRICTED]
        for prov in self.provinces:
            own: list[str] = []
            if prov.catalog == "hunan":
                own = [f"hunan:S{k:02d}" for k in range(1, 30)]
            elif prov.catalog is not None:
                own = [f"{prov.catalog}:S{k:02d}" for k in range(1, 8 + rng.randrange(12) + 1)]
            prov.techs = national + own

    def catalogues(self) -> None:
        rng = self.rng
        for p in self.provinces:
            if p.catalog in (None, "hunan"):
                continue
            day = date(2018, 11, 1) + timedelta(days=rng.randrange(30))
            names = list(PROVINCIAL_TECHNOLOGIES)
            rng.shuffle(names)
            for k, ref in enumerate(t for t in p.techs if not t.startswith("national:")):
                code = ref.partition(":")[2]
                self.w(
                    {
                        "id": f"{p.catalog}/2018/listed/{code}",
                        "kind": "technology.listed",
                        "effective": day.isoformat(),
                        "by": p.authority,
                        "basis": "MTM-2018#9",
                        "catalog": p.catalog,
                        "code": code,
                        "name": names[k % len(names)],
                        "class": "restricted",
                        "version": f"{p.name}限制类医疗技术目录（2018版）",
                    }
                )

    def institutions(self) -> None:
        rng = self.rng
        counters: dict[str, int] = {}
        target_uses = self.n * 0.008
        level_weight = {"三级": 10.0, "二级": 2.0, "一级": 0.2, "未定级": 0.1}
        expected = sum(level_weight[lv] * w for lv, w in LEVELS) / sum(w for _, w in LEVELS)
        scale = target_uses / (self.n_inst * expected)
        for i in range(self.n_inst):
            p = self.provinces[self.inst_prov[i]]
            city = p.cities[0] if rng.random() < 0.4 else rng.choice(p.cities)
            level = _weighted(rng, LEVELS)[0]
            category, _, suffix = _weighted(rng, CATEGORIES)
            counters[city] = counters.get(city, 0) + 1
            stem = _stem(city)
            name = f"{stem}{suffix}" if counters[city] == 1 else f"{stem}第{counters[city]}{suffix}"
            day = date(1990, 1, 1) + timedelta(days=rng.randrange(8400))  # 1990 … 2012
            municipality = p.name[:2] == city[:2] or p.code in (11, 12, 31, 50)
            local = f"{p.name}{city}" if municipality else city
            org = (10_000_000 + i * 7_919) % 100_000_000
            licence = f"{org:08d}{'0123456789X'[i % 11]}{p.code}{(i * 13) % 100:02d}0111A1001"
            reg_id = f"{p.abbr}-{day.year}-I{i:06d}"
            self.inst_id.append(licence)
            self.inst_reg.append(reg_id)
            self.inst_eff.append(day.toordinal())
            self.inst_level.append(level)
            self.w(
                {
                    "id": reg_id,
                    "kind": "institution.registered",
                    "effective": day.isoformat(),
                    "by": f"{local}{era(day)}",
                    "institution": licence,
                    "name": name,
                    "province": p.name,
                    "city": city,
                    "category": category,
                    "level": level,
                    "licensing_authority": f"{local}卫生健康委员会",
                }
            )
            # this institution's uses of restricted technologies
            uses: list[int] = []
            k_uses = min(len(p.techs), round(rng.expovariate(1.0) * level_weight[level] * scale))
            offset = rng.randrange(len(p.techs))
            for k in range(k_uses):
                tech = p.techs[(offset + k) % len(p.techs)]
                uses.append(self._new_use(i, tech, level))
            self.inst_uses.append(uses)

    def _new_use(self, i: int, tech: str, level: str) -> int:
        rng = self.rng
        u = len(self.use_inst)
        code = tech.partition(":")[2]
        first_month = 0
        if code in NATIONAL_LATE and tech.startswith("national:"):
            first_month = month_of(NATIONAL_LATE[code]) + 2  # reviews precede the first case
        start_month = first_month + min(MONTHS - 6 - first_month, int(rng.expovariate(1 / 18)))
        start = month_start(start_month) + timedelta(days=rng.randrange(28))
        rate = min(25.0, rng.paretovariate(2.0)) * (3.0 if level == "三级" else 1.0)
        r = rng.random()
        if r < 0.05:
            submit = 0  # never filed: unfiled use
        elif r < 0.15:
            submit = (start + timedelta(days=30 + rng.randrange(60))).toordinal()  # late
        else:
            submit = (start + timedelta(days=3 + rng.randrange(16))).toordinal()
        stop = -1
        if rng.random() < 0.03:
            stop = start_month + 6 + rng.randrange(max(1, MONTHS - start_month - 6))
        susp = (-1, -1)
        if rng.random() < 0.04:
            a = start_month + 3 + rng.randrange(max(1, MONTHS - start_month - 3))
            susp = (a, a + 1 + rng.randrange(4))
        base = -1
        if level == "三级" and rng.random() < 0.12:
            base = start_month + 6 + rng.randrange(24)
        self.use_inst.append(i)
        self.use_tech.append(tech)
        self.use_start.append(start.toordinal())
        self.use_rate.append(rate)
        self.use_submit.append(submit)
        self.use_rejected.append(rng.random() < 0.05)
        self.use_stop.append(stop if stop < MONTHS else -1)
        self.use_susp.append(susp)
        self.use_base.append(base if base < MONTHS else -1)
        return u

    def physicians(self) -> None:
        rng = self.rng
        last = date(2017, 12, 31).toordinal()
        for j in range(self.n_phys):
            i = j % self.n_inst
            k = j // self.n_inst
            p = self.provinces[self.inst_prov[i]]
            earliest = max(self.inst_eff[i], date(2000, 1, 1).toordinal()) + 30
            day = date.fromordinal(earliest + rng.randrange(max(1, last - earliest)))
            # the first physicians of an institution are the senior ones who lead its technologies
            title = "主任医师" if k < 2 else _weighted(rng, TITLES)[0]
            self.w(
                {
                    "id": f"{p.abbr}-{day.year}-P{j:08d}",
                    "kind": "physician.registered",
                    "effective": day.isoformat(),
                    "by": self.inst_id[i],
                    "physician": self.physician(i, k),
                    "name": self.name(),
                    "institution": self.inst_id[i],
                    "title": title,
                }
            )

    def privileges(self) -> None:
        """Grades granted under MTM-2018#20 to the physicians who report the cases (k < 4)."""
        rng = self.rng
        for i in range(self.n_inst):
            p = self.provinces[self.inst_prov[i]]
            refs = [
                self.use_tech[u] for u in self.inst_uses[i] if self.use_tech[u].partition(":")[2] not in NATIONAL_LATE
            ]
            for k in range(min(4, self.physicians_at(i))):
                day = date(2018, 11, 1) + timedelta(days=rng.randrange(60))
                level = 4 if k < 2 else 3
                procedures = [*refs, rng.choice(PROCEDURES)]
                self.w(
                    {
                        "id": p.next_id(day),
                        "kind": "privilege.granted",
                        "effective": day.isoformat(),
                        "by": self.inst_id[i],
                        "basis": "MTM-2018#20",
                        "institution": self.inst_id[i],
                        "physician": self.physician(i, k),
                        "level": level,
                        "procedures": procedures,
                    }
                )

    # --- the years of activity ----------------------------------------------------------------

    def months(self) -> None:
        """Month by month; the case rate is re-aimed each month at the lines still to write."""
        n_uses = len(self.use_inst)
        weight = [0.0] * (MONTHS + 1)  # Σ rate of the uses reporting cases in each month
        for u in range(n_uses):
            weight[month_of(date.fromordinal(self.use_start[u]))] += self.use_rate[u]
            if self.use_stop[u] >= 0:
                weight[self.use_stop[u]] -= self.use_rate[u]
        for m in range(1, MONTHS):
            weight[m] += weight[m - 1]
        remaining_weight = sum(weight[:MONTHS])
        per_month = self.n / MONTHS
        other_per_month = 0.012 * per_month + 4.6 * n_uses / MONTHS  # everything but cases, at first
        cases_written = 0
        for m in range(MONTHS):
            before = self.w.count
            still = self.n - before - other_per_month * (MONTHS - m)
            self.lam = max(0.0, 0.985 * still / remaining_weight) if remaining_weight > 0 else 0.0
            self.case_count = 0
            for u in range(n_uses):
                self.use_month(u, m)
            self.oversight(m, per_month)
            cases_written += self.case_count
            other = self.w.count - before - self.case_count
            other_per_month = (other_per_month * 2 + other) / 3
            remaining_weight -= weight[m]

    def use_month(self, u: int, m: int) -> None:
        rng, w = self.rng, self.w
        start = self.use_start[u]
        start_month = month_of(date.fromordinal(start))
        if m < start_month - 1:
            return
        i = self.use_inst[u]
        p = self.provinces[self.inst_prov[i]]
        inst = self.inst_id[i]
        tech = self.use_tech[u]
        first = date.fromordinal(start)
        if m == start_month and tech.partition(":")[2] in NATIONAL_LATE:
            # a technology listed after the 2018 grants: its physicians' privileges are extended
            day = first - timedelta(days=30)
            refs = [self.use_tech[v] for v in self.inst_uses[i] if self.use_start[v] <= start]
            for k in range(min(2, self.physicians_at(i))):
                w(
                    {
                        "id": p.next_id(day),
                        "kind": "privilege.granted",
                        "effective": day.isoformat(),
                        "by": inst,
                        "basis": "MTM-2018#20",
                        "institution": inst,
                        "physician": self.physician(i, k),
                        "level": 4,
                        "procedures": refs,
                    }
                )
        if m == start_month:
            for committee, before in (("management", 25), ("ethics", 12)):
                day = first - timedelta(days=before - rng.randrange(5))
                w(
                    {
                        "id": p.next_id(day),
                        "kind": "review.concluded",
                        "effective": day.isoformat(),
                        "by": inst,
                        "basis": "MTM-2018#21" if committee == "management" else "MTM-2018#13",
                        "institution": inst,
                        "technology": tech,
                        "committee": committee,
                        "outcome": "approved",
                    }
                )
        self.filing(u, m, p, inst, tech)
        stop = self.use_stop[u]
        susp_from, susp_to = self.use_susp[u]
        if m == susp_from:
            day = month_start(m) + timedelta(days=rng.randrange(10))
            w(
                {
                    "id": p.next_id(day),
                    "kind": "use.suspended",
                    "effective": day.isoformat(),
                    "by": p.authority,
                    "basis": "MTM-2018#25(3)",
                    "institution": inst,
                    "technology": tech,
                    "reason": "MTM-2018#25(3)",
                }
            )
        if m == susp_to and susp_to < MONTHS:
            day = month_start(m) + timedelta(days=rng.randrange(10))
            w(
                {
                    "id": p.next_id(day),
                    "kind": "use.resumed",
                    "effective": day.isoformat(),
                    "by": p.authority,
                    "institution": inst,
                    "technology": tech,
                }
            )
        if m == stop:
            day = month_start(m) + timedelta(days=rng.randrange(28))
            w(
                {
                    "id": p.next_id(day),
                    "kind": "use.stopped",
                    "effective": day.isoformat(),
                    "by": inst,
                    "basis": "MTM-2018#42",
                    "institution": inst,
                    "technology": tech,
                    "reason": "技术负责人调离，停止开展",
                }
            )
        if m >= start_month and (stop < 0 or m < stop):
            suspended = susp_from <= m < susp_to
            lam = self.lam * self.use_rate[u] * (0.05 if suspended else 1.0)
            count = _poisson(rng, lam)
            if m == start_month:
                count = max(1, count)
            self.cases(u, m, count, p, i, inst, tech, first if m == start_month else None)
        base = self.use_base[u]
        if base >= 0 and m == base:
            day = month_start(m) + timedelta(days=rng.randrange(28))
            late = rng.random() < 0.1
            notice = day - timedelta(days=(10 + rng.randrange(10)) if late else rng.randrange(1, 4))
            w(
                {
                    "id": p.next_id(day),
                    "kind": "training_base.filed",
                    "effective": day.isoformat(),
                    "by": p.authority,
                    "basis": "MTM-2018#29",
                    "institution": inst,
                    "technology": tech,
                    "enrolment_notice": notice.isoformat(),
                }
            )
        elif base >= 0 and m > base:
            for _ in range(_poisson(rng, 0.3)):
                others = self.by_province[self.inst_prov[i]]
                i2 = others[rng.randrange(len(others))]
                k2 = rng.randrange(self.physicians_at(i2))
                day = month_start(m) + timedelta(days=rng.randrange(28))
                w(
                    {
                        "id": p.next_id(day),
                        "kind": "trainee.certified",
                        "effective": day.isoformat(),
                        "by": inst,
                        "basis": "MTM-2018#33",
                        "physician": self.physician(i2, k2),
                        "institution": inst,
                        "technology": tech,
                    }
                )
            if rng.random() < 0.004:
                day = month_start(m) + timedelta(days=rng.randrange(28))
                w(
                    {
                        "id": p.next_id(day),
                        "kind": "training_base.stopped",
                        "effective": day.isoformat(),
                        "by": p.authority,
                        "basis": "MTM-2018#42",
                        "institution": inst,
                        "technology": tech,
                        "reason": "不再符合培训基地条件",
                    }
                )
                self.use_base[u] = -1

    def filing(self, u: int, m: int, p: Province, inst: str, tech: str) -> None:
        rng, w = self.rng, self.w
        submit = self.use_submit[u]
        if not submit:
            return
        submitted = date.fromordinal(submit)
        rejected = self.use_rejected[u]
        steps: list[tuple[date, str]] = [(submitted, "filing.submitted")]
        if rejected:
            steps += [
                (submitted + timedelta(days=12), "filing.rejected"),
                (submitted + timedelta(days=40), "filing.submitted"),
                (submitted + timedelta(days=55), "filing.completed"),
            ]
        else:
            steps.append((submitted + timedelta(days=8 + (submit % 15)), "filing.completed"))
        lead = self.physician(self.use_inst[u], 0)
        for day, kind in steps:
            if month_of(day) != m or m >= MONTHS:
                continue
            decision: dict[str, Any] = {"id": p.next_id(day), "kind": kind, "effective": day.isoformat()}
            if kind == "filing.submitted":
                decision |= {
                    "by": inst,
                    "basis": "MTM-2018#11",
                    "institution": inst,
                    "technology": tech,
                    "technical_lead": lead,
                    "materials": ["限制类技术临床应用备案表", "技术负责人资质证明", "管理委员会和伦理委员会论证材料"],
                }
            elif kind == "filing.rejected":
                decision |= {
                    "by": p.authority,
                    "basis": "MTM-2018#11",
                    "institution": inst,
                    "technology": tech,
                    "reason": "备案材料不全",
                }
            else:
                decision |= {"by": p.authority, "basis": "MTM-2018#11", "institution": inst, "technology": tech}
                if p.name == "重庆市":
                    end = day + timedelta(days=6)
                    decision |= {
                        "chongqing.expert_review": "经专家形式审核，符合技术管理规范要求",
                        "chongqing.public_notice_start": day.isoformat(),
                        "chongqing.public_notice_end": end.isoformat(),
                    }
            w(decision)
            if kind == "filing.completed" and rng.random() < 0.01:
                fixed = day + timedelta(days=rng.randrange(1, 5))
                w(
                    {
                        "id": p.next_id(fixed),
                        "kind": "decision.corrected",
                        "effective": fixed.isoformat(),
                        "by": p.authority,
                        "corrects": decision["id"],
                        "fields": {"effective": fixed.isoformat()},
                        "note": "备案日期录入有误，更正",
                    }
                )

    def cases(self, u: int, m: int, count: int, p: Province, i: int, inst: str, tech: str, first: date | None) -> None:
        rng, w = self.rng, self.w
        if count <= 0:
            return
        base = month_start(m)
        days_in = (month_start(m + 1) - base).days
        low = (first - base).days if first is not None else 0
        days = sorted(low + rng.randrange(days_in - low) for _ in range(count))
        if first is not None:
            days[0] = low
        doctors = min(4, self.physicians_at(i))
        code = tech.partition(":")[2]
        self.case_count += count
        for n, offset in enumerate(days):
            day = base + timedelta(days=offset)
            # the senior two (granted grade 4) report most cases; the others (grade 3) the rest,
            # now and then one above their grade (a finding, MTM-2018#20)
            k = rng.randrange(min(2, doctors)) if rng.random() < 0.8 else rng.randrange(doctors)
            level = (4 if rng.random() < 0.6 else 3) if k < 2 else (4 if rng.random() < 0.03 else 3)
            decision: dict[str, Any] = {
                "id": p.next_id(day),
                "kind": "case.performed",
                "effective": day.isoformat(),
                "by": inst,
                "institution": inst,
                "technology": tech,
                "physician": self.physician(i, k),
                "case": f"{p.abbr}{day:%Y%m%d}-{code}-{u:05d}{n:02d}",
                "level": level,
            }
            w(decision)
            r = rng.random()
            if r < 0.002:
                fixed = day + timedelta(days=rng.randrange(1, 10))
                w(
                    {
                        "id": p.next_id(fixed),
                        "kind": "decision.corrected",
                        "effective": fixed.isoformat(),
                        "by": inst,
                        "corrects": decision["id"],
                        "fields": {"level": 7 - decision["level"]},  # 4 ↔ 3
                        "note": "手术分级填报有误",
                    }
                )
            elif r < 0.0025:
                fixed = day + timedelta(days=rng.randrange(1, 10))
                w(
                    {
                        "id": p.next_id(fixed),
                        "kind": "decision.retracted",
                        "effective": fixed.isoformat(),
                        "by": inst,
                        "retracts": decision["id"],
                        "reason": "重复报送",
                    }
                )

    def oversight(self, m: int, per_month: float) -> None:  # noqa: C901 — split, it would reorder the seeded draws
        """What happens across institutions in a month: inspections, orders, penalties, people."""
        rng, w = self.rng, self.w
        base = month_start(m)

        def some(rate: float) -> int:
            return _poisson(rng, rate * per_month)

        def pick() -> int:
            return rng.randrange(self.n_inst)

        for _ in range(some(0.004)):
            i = pick()
            p = self.provinces[self.inst_prov[i]]
            day = base + timedelta(days=rng.randrange(28))
            w(
                {
                    "id": p.next_id(day),
                    "kind": "inspection.recorded",
                    "effective": day.isoformat(),
                    "by": p.authority,
                    "basis": "MTM-2018#35",
                    "institution": self.inst_id[i],
                    "findings": rng.sample(FINDINGS, 1 + rng.randrange(3)),
                }
            )
            if rng.random() < 0.25:
                uses = self.inst_uses[i]
                order: dict[str, Any] = {
                    "id": p.next_id(day),
                    "kind": "correction.ordered",
                    "effective": day.isoformat(),
                    "by": p.authority,
                    "basis": "MTM-2018#45",
                    "institution": self.inst_id[i],
                }
                if uses and self.use_start[uses[0]] <= day.toordinal():
                    order["technology"] = self.use_tech[uses[0]]
                order["deadline"] = (day + timedelta(days=30)).isoformat()
                w(order)
                if rng.random() < 0.3:
                    w(
                        {
                            "id": p.next_id(day),
                            "kind": "penalty.imposed",
                            "effective": day.isoformat(),
                            "by": p.authority,
                            "basis": "MTM-2018#46",
                            "institution": self.inst_id[i],
                            "amount_yuan": rng.choice((5000, 10000, 20000, 30000)),
                            "reason": "逾期未改正",
                        }
                    )
        for _ in range(some(0.004)):  # a physician leaves (never one who reports cases)
            i = pick()
            if self.physicians_at(i) <= 4:
                continue
            k = 4 + rng.randrange(self.physicians_at(i) - 4)
            p = self.provinces[self.inst_prov[i]]
            day = base + timedelta(days=rng.randrange(28))
            w(
                {
                    "id": p.next_id(day),
                    "kind": "physician.deregistered",
                    "effective": day.isoformat(),
                    "by": self.inst_id[i],
                    "physician": self.physician(i, k),
                    "institution": self.inst_id[i],
                }
            )
        for _ in range(some(0.002)):  # a privilege suspended or revoked
            i = pick()
            p = self.provinces[self.inst_prov[i]]
            k = rng.randrange(min(4, self.physicians_at(i)))
            day = base + timedelta(days=rng.randrange(28))
            kind = "privilege.suspended" if rng.random() < 0.7 else "privilege.revoked"
            w(
                {
                    "id": p.next_id(day),
                    "kind": kind,
                    "effective": day.isoformat(),
                    "by": self.inst_id[i],
                    "basis": "MTM-2018#20",
                    "institution": self.inst_id[i],
                    "physician": self.physician(i, k),
                    "reason": "年度考核不合格",
                }
            )
        for _ in range(some(0.0015)):  # a further grant (a junior physician promoted, a new procedure)
            i = pick()
            if self.physicians_at(i) <= 4:
                continue
            p = self.provinces[self.inst_prov[i]]
            k = 4 + rng.randrange(self.physicians_at(i) - 4)
            day = base + timedelta(days=rng.randrange(28))
            refs = [self.use_tech[u] for u in self.inst_uses[i] if self.use_start[u] <= day.toordinal()]
            w(
                {
                    "id": p.next_id(day),
                    "kind": "privilege.granted",
                    "effective": day.isoformat(),
                    "by": self.inst_id[i],
                    "basis": "MTM-2018#20",
                    "institution": self.inst_id[i],
                    "physician": self.physician(i, k),
                    "level": rng.choice((2, 3, 4)),
                    "procedures": refs[:2] or [rng.choice(PROCEDURES)],
                }
            )
        for _ in range(some(0.0003)):  # a technical audit of a use
            i = pick()
            uses = [u for u in self.inst_uses[i] if self.use_start[u] <= base.toordinal()]
            if not uses:
                continue
            p = self.provinces[self.inst_prov[i]]
            day = base + timedelta(days=rng.randrange(28))
            w(self.panel(p.next_id(day), day, p.authority, "technical-audit", self.use_tech[uses[0]], self.inst_id[i]))
        if m % 6 == 5:  # national evaluations, twice a year
            day = base + timedelta(days=rng.randrange(28))
            tech = f"national:{rng.choice(NATIONAL_RESTRICTED[:10])}"
            w(self.panel(f"NHC-{day.year}-E{m:03d}", day, "国家卫生健康委", "evaluation", tech, None))
        if rng.random() < per_month / 200_000:  # very rarely, a prohibited technology
            i = pick()
            p = self.provinces[self.inst_prov[i]]
            day = base + timedelta(days=rng.randrange(28))
            w(
                {
                    "id": p.next_id(day),
                    "kind": "case.performed",
                    "effective": day.isoformat(),
                    "by": self.inst_id[i],
                    "institution": self.inst_id[i],
                    "technology": rng.choice(PROHIBITED),
                    "physician": self.physician(i, 0),
                    "case": f"{p.abbr}{day:%Y%m%d}-X-{i:06d}",
                }
            )

    def panel(self, decision_id: str, day: date, by: str, kind: str, tech: str, inst: str | None) -> dict[str, Any]:
        rng = self.rng
        members: list[str] = []
        while len(members) < 5 + rng.randrange(3):
            person = self.name()
            if person not in members:
                members.append(person)
        recused = [members[-1]] if rng.random() < 0.3 else []
        votes = {m: ("for" if rng.random() < 0.8 else "against") for m in members if m not in recused}
        in_favour = sum(v == "for" for v in votes.values()) * 2 > len(votes)
        if kind == "technical-audit":
            outcome = "pass" if in_favour else "fail"
        else:
            outcome = rng.choice(("strengthen", "no-change")) if in_favour else "restrict"
        decision: dict[str, Any] = {
            "id": decision_id,
            "kind": "panel.concluded",
            "effective": day.isoformat(),
            "by": by,
        }
        if kind == "evaluation":
            decision["basis"] = "MTM-2018#8"
        decision |= {"panel": kind, "technology": tech}
        if inst is not None:
            decision["institution"] = inst
        decision |= {"members": members, "recused": recused, "votes": votes, "outcome": outcome}
        return decision

    def pad(self) -> None:
        """Case reports of December 2025 until the file has its N lines."""
        rng = self.rng
        m = MONTHS - 1
        active = [
            u
            for u in range(len(self.use_inst))
            if self.use_stop[u] < 0 and month_of(date.fromordinal(self.use_start[u])) <= m
        ]
        if not active:
            active = list(range(len(self.use_inst)))
        if not active:
            return
        while True:
            u = active[rng.randrange(len(active))]
            i = self.use_inst[u]
            self.cases(u, m, 1, self.provinces[self.inst_prov[i]], i, self.inst_id[i], self.use_tech[u], None)


def lines(n: int, seed: int) -> Iterator[str]:
    """The file's lines, for callers that want them in memory (tests, small N)."""
    import io

    buf = io.StringIO()
    Generator(n, seed, buf).run()
    yield from buf.getvalue().splitlines()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", "-n", type=int, default=1_000_000, help="lines to write (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    if args.decisions < 2_000:
        parser.error("--decisions must be at least 2000 (the catalogues alone take ≈500 lines)")
    if args.output:
        with open(args.output, "w", encoding="utf-8", buffering=1 << 20) as out:
            written = Generator(args.decisions, args.seed, out).run()
    else:
        written = Generator(args.decisions, args.seed, sys.stdout).run()
    print(f"{written} decisions written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
