"""The 2015 transition (国卫医发〔2015〕71号, 关于取消第三类医疗技术临床应用准入审批有关工作的通知), 2015-06-29.

What changed, and where the ledger holds it:

* **Admission approval of third-class technologies was abolished.** MTM-2009's audit-then-approve
  path for class 2 and 3 stops being required from this day; ``mtm2009.check_unapproved_use``
  therefore judges only cases before :data:`TRANSITION_2015`.
* **A national list of 15 restricted technologies** (限制临床应用的医疗技术（2015版）) took its place,
  managed by *filing* (备案) instead of approval. The catalogue data holds them as decisions:
  ``national/2015/listed/G01`` … ``G15`` (class ``restricted``, effective 2015-06-29), with the codes
  Hunan's 2018 list later used for them (HN-2018 附件1).
* **The third class ended.** With admission approval gone, 《第三类医疗技术目录》 is no longer a list in
  force: every entry of it is delisted on 2015-06-29 (``national/2015/delisted/C3-…``), three of them
  because they continue as restricted ones (放射性粒子植入 C3-11 → G08, 人工智能辅助诊断/治疗 C3-16 →
  G12/G13, 变性手术 C3-09 → G06). Two stay under lists of the notice's own, with their labels
  (``national/2015/listed/C3-01``, ``C3-02``): 克隆治疗技术 among its prohibited examples, and
  自体干细胞和免疫细胞治疗技术 under clinical-research management (部分第三类医疗技术按照临床研究管理).
* **Its prohibited examples** (seeds/001, "禁止类医疗技术确定原则", quoting the notice: 脑下垂体酒精毁损术治疗
  顽固性疼痛; 克隆治疗技术、代孕技术; 除医疗目的以外的肢体延长术; 角膜放射状切开术) are prohibited from 2015-06-29:
  ``national/2018/listed/P18-0…``, first recorded from MTM-2018#9 (which names no example), are
  corrected to the notice (``national/2018/corrected/P18-0…``); HN-2018#二(一) restates them in 2018.

No rule of its own applies: the transition set no deadline in working days the seeds record (the
notice is quoted only in part by the MTM-2018 lecture), and every effect on what is legal is a
catalogue change that the catalogue data already expresses as of 2015-06-29 — so the class a rule
looks up for a day (``facts.tech_class``) is already the transition's. Filings of the 15 restricted
technologies made in the transition (e.g. ``HN-2016-0004``) are recorded and shown; from 2018-11-01
MTM-2018#49 asks uses under way to file again (see ``mtm2018``).
"""

from __future__ import annotations

from datetime import date

from projections import Rule

TRANSITION_2015 = date(2015, 6, 29)
"""国卫医发〔2015〕71号: third-class admission approval abolished; restricted technologies filed instead."""

RULES: tuple[Rule, ...] = ()
"""No rule of its own (see the module docstring); kept so every regime contributes the same way."""
