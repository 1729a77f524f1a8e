// /ui/me words: plain Chinese first (zh-CN), English on request. Every label the page shows comes
// from here, so switching language never leaves a mixed page. Codes the records carry (sex, visit
// class, statuses, lab flags, audit actions) are worded here too, not shown raw.
(() => {
"use strict";

const WORDS = {
  "zh-CN": {
    title: "我的健康档案",
    skip: "跳到正文",
    intro: "在这里查看您在医共体各成员医院的就诊、诊断、用药、疫苗、过敏、检查检验结果和影像报告。",
    signin: "登录",
    signout: "退出登录",
    signinHelp: "登录需要：居民身份证号，以及在医院登记过的手机号（接收验证码）。",
    noPhone: "没有登记手机号，或收不到验证码？请带上本人身份证，到任一医共体成员医院的服务台（挂号收费处）登记或更改手机号，然后再登录。",
    loading: "正在加载您的档案，请稍候……",
    loaded: "档案已加载。",
    sessionExpired: "登录已过期，请重新登录。",
    // a family member's access ended: the server's reason (engine.auth.policy.REFUSAL_SYSTEM), as it is
    familyEnded: {
      withdrawn: "家人代查的授权已被对方撤销，不能再查看对方的档案。",
      expired: "家人代查的授权已到期，不能再查看对方的档案。",
      "not-started": "家人代查的授权还没有开始生效。",
      moved: "授权所涉的档案已被医院归入他人名下，此授权不再有效，需要档案本人重新授权。",
      apart: "授权所涉的档案目前已被医院移出本人名下（正在核对身份），此授权暂不能使用；医院核对归回后恢复，或请档案本人重新授权。",
      filed: "授权时这份档案还没有身份证号，之后它归入了某人名下，无法确认仍是授权所指的本人，此授权不再有效，需要档案本人重新授权。",
      joined: "授权所涉的档案与他人名下的档案相连（医院正在核对），此授权暂不能使用。",
      unread: "暂时无法核对授权所涉档案的身份记录，此授权暂不能使用，请稍后再登录。",
      ended: "这份家人代查授权已不能使用，不能再查看对方的档案。",
    },
    familyEndedAfter: "您可以重新登录查看自己的档案。",
    signinEnded: "登录没有完成：",
    exportIncomplete: "下载没有完成：有些记录没能读取，没有保存不完整的档案。请稍后再试。",
    refused: "服务器拒绝了这部分记录的查询，下面没有显示这部分记录（不等于没有记录）。",
    partlyRefused: "有些记录的查询被服务器拒绝，标有提示的部分没有显示。",
    // a list read in part: its first pages are shown, a later page was not answered (or fewer came than counted)
    partial: "这部分记录没有读全：下面只显示了已读到的一部分，还有记录没有显示。请稍后刷新页面再看。",
    partlyShown: "有些记录没有读全，标有提示的部分只显示了一部分。请稍后刷新页面。",
    stateMismatch: "登录没有完成，请重新登录。",
    signinFailed: "登录没有完成，请重新登录。如多次不成功，请到医院服务台咨询。",
    signinUnanswered: "服务器暂时没有应答，登录没有完成。请稍后重新登录。",
    unreadable: "服务器暂时没有应答，这部分记录没能读取，下面可能不全。请稍后刷新页面再看。",
    partlyLoaded: "有些记录暂时没能读取（服务器没有应答），标有提示的部分可能不全。请稍后刷新页面。",
    allergyUnreadable: "过敏记录暂时没能读取，请稍后刷新页面；就医时请主动告诉医生您的过敏史。",
    signinDenied: "登录已取消或未获同意，您的档案没有打开。需要时请重新登录。",
    bigText: "大字", bigTextOn: "大字：开", bigTextOff: "大字：关",
    language: "English", languageLabel: "Switch to English",
    // what the download is, in her words (ui39: the button said "(FHIR)" alone, a word she does not know)
    print: "打印摘要", exportFhir: "下载我的健康档案（FHIR 格式）", exporting: "正在准备下载……", exported: "已下载。",
    exportHint: "下载的是一个数据文件（国际通用的 FHIR 健康数据格式），可交给其他医院或健康类应用读取，一般不能直接打开阅读；要阅读请在本页查看或打印摘要。",
    exportName: (d) => `我的健康档案-${d}.json`,
    sections: "档案分类", backToSections: "返回分类", bannerLabel: "本人信息",
    tab_timeline: "全部", tab_visits: "就诊", tab_diagnoses: "诊断", tab_meds: "用药", tab_immunisations: "疫苗",
    tab_allergies: "过敏", tab_appointments: "预约", tab_referrals: "转诊", tab_documents: "文书",
    tab_results: "检验", tab_trends: "趋势", tab_imaging: "影像", tab_who: "谁看过我的档案",
    h_timeline: "全部记录（按时间）", h_visits: "就诊记录", h_diagnoses: "诊断", h_meds: "用药",
    h_immunisations: "疫苗接种", h_allergies: "过敏", h_appointments: "预约", h_referrals: "转诊",
    h_documents: "文书与报告单", h_results: "检验结果", h_trends: "检验趋势", h_imaging: "影像检查",
    h_who: "谁看过我的档案",
    none: "暂无记录",
    // a visit sent without its date (PV1-44 empty), dated by the records filed under it that truly
    // date one, named by what they are (pages31; pagesfix31: not a diagnosis, not called tests when
    // they are prescriptions), else said undated
    visitByRecords: (d, what) => `就诊日期未注明；本次就诊的${what}日期为 ${d}`,
    visitOnRecordsDay: (what) => `就诊日期未注明，按本次就诊的${what}排在这一天`,
    visitUndated: "就诊日期未注明",
    datedBy: { tests: "检验检查记录", meds: "处方用药记录", vaccines: "接种记录", referral: "转诊记录" },
    // a record the hospital withdrew (R4 entered-in-error): its card says only this (pagesfix31)
    withdrawnRecord: "医院已作废此记录（录入有误）",
    undated: "日期未注明", colon: "：", sep: "、", paren: (x) => `（${x}）`, andMore: "等",
    noTrends: "同一项目有两次以上结果时，这里会画出变化趋势。",
    // a section's count: the records shown as hers; the withdrawn ones (shown only as withdrawn) said apart
    records: (n, gone) => `共 ${n} 条` + (gone ? `（另有 ${gone} 条已作废）` : ""),
    institutions: (list) => `来自：${list.join("、")}`,
    sex: { male: "男", female: "女", other: "其他", unknown: "未知" },
    born: "出生", age: (n) => `${n} 岁`, idNumber: "身份证号",
    unknownInst: "未注明机构",
    kind: {
      visit: "就诊", diagnosis: "诊断", med: "用药", immunisation: "疫苗", allergy: "过敏", appointment: "预约",
      referral: "转诊", document: "文书", result: "检验", imaging: "影像",
    },
    encClass: { IMP: "住院", ACUTE: "住院", NONAC: "住院", AMB: "门诊", EMER: "急诊", HH: "家庭病床", VR: "线上问诊",
      OBSENC: "留观", PRENC: "预约就诊", SS: "日间手术" },
    encStatus: { "in-progress": "正在住院", finished: "已结束", planned: "计划中", arrived: "已到达",
      cancelled: "已取消", onleave: "请假中", triaged: "已分诊", "entered-in-error": "录入有误",
      // R4's "unknown" says nothing a person can use: no word rather than the code (pages31)
      unknown: "" },
    // an in-progress visit not a stay (an outpatient's or emergency registration, A04, stored
    // in-progress since pages33): the patient came; "正在…就诊" would still say so a month later
    encStatusVisit: { "in-progress": "已到院" },
    reason: "原因", doctor: "医生", ward: "科室/病区", wardCodes: "院内代码", from: "开始", to: "结束",
    condStatus: { active: "目前存在", recurrence: "复发", relapse: "复发", inactive: "已不活动", remission: "缓解",
      resolved: "已痊愈" },
    condVerif: { unconfirmed: "未确诊", provisional: "初步诊断", differential: "待鉴别", confirmed: "已确诊", refuted: "已排除",
      "entered-in-error": "录入有误" },
    condCat: { "encounter-diagnosis": "就诊诊断", "problem-list-item": "长期问题" },
    onset: "起病",
    medKind: { MedicationRequest: "处方", MedicationDispense: "发药", MedicationStatement: "用药记录",
      MedicationAdministration: "给药" },
    medStatus: { active: "正在使用", completed: "已完成", stopped: "已停用", cancelled: "已取消", "on-hold": "暂停",
      "entered-in-error": "录入有误", "in-progress": "进行中", draft: "草稿", preparation: "正在配药",
      declined: "未发药", intended: "准备使用", "not-taken": "未服用", "not-done": "未给药", unknown: "" },
    dose: "用法", medUnnamed: "药品（名称请看医院的处方单）", quantity: "数量",
    immStatus: { completed: "已接种", "not-done": "未接种", "entered-in-error": "录入有误" },
    doseNo: (n) => `第 ${n} 剂`, lot: "批号", site: "部位", amount: "剂量", route: "接种方式",
    allergyCrit: { high: "严重", low: "轻微", "unable-to-assess": "无法评估" },
    allergyCat: { food: "食物", medication: "药物", environment: "环境", biologic: "生物制品" },
    reaction: "反应", allergyBanner: "过敏", allergyStatus: { active: "仍然过敏", inactive: "已不过敏", resolved: "已消除" },
    apptStatus: { proposed: "待确认", pending: "待确认", booked: "已预约", arrived: "已到达", fulfilled: "已就诊",
      cancelled: "已取消", noshow: "未到", "entered-in-error": "录入有误", "checked-in": "已签到", waitlist: "候补" },
    where: "地点", dept: "科室", note: "备注",
    refStatus: { draft: "草稿", active: "进行中", "on-hold": "暂停", revoked: "已撤销", completed: "已完成",
      "entered-in-error": "录入有误", unknown: "未知" },
    taskStatus: { draft: "草稿", requested: "已提交", received: "对方已收到", accepted: "对方已接收",
      rejected: "对方已拒绝", ready: "准备好", cancelled: "已取消", "in-progress": "正在处理", "on-hold": "暂停",
      failed: "未成功", completed: "已完成", "entered-in-error": "录入有误" },
    refState: { requested: "已申请，等待对方医院接收", accepted: "对方医院已同意接收，请按约定前往", rejected: "对方医院未能接收",
      cancelled: "转诊已撤销", arrived: "已到对方医院就诊", completed: "对方医院诊疗已完成",
      "referred-back": "已转回原医院继续治疗", "entered-in-error": "录入有误" },
    tab_family: "家人代查", h_family: "家人代查",
    relation: { CHILD: "子女", PRN: "父母", SPS: "配偶", SIB: "兄弟姐妹", GRNDCHILD: "孙子女/外孙子女",
      GRPRN: "祖父母/外祖父母", GUARD: "监护人", FAMMEMB: "其他家人" },
    acting_title: (whose) => `您正在代${whose || "家人"}查看档案。`,
    acting_body: (me, rel) => `您（${me}${rel ? "，" + rel : ""}）的每一次查看都会记在对方的"谁看过我的档案"里；对方可以随时撤销授权。`,
    family_intro: "您可以让家人（例如子女、父母）用他们自己的手机和身份证号登录，代您查看您的健康档案。您可以随时撤销。",
    family_none: "您还没有授权任何家人。",
    family_state: { active: "可以查看", withdrawn: "已撤销", expired: "已过期" },
    family_until: "有效期至", family_ended: "结束于", family_noEnd: "直到您撤销", family_since: "授权日期",
    family_byDesk: "在医院服务台核对身份证后办理",
    family_withdraw: (n) => `撤销${n}的查看权限`, family_withdrawn: "已撤销。对方从现在起不能再查看您的档案。",
    family_confirmWithdraw: (n) => `确定撤销${n}的查看权限吗？撤销后立即生效，${n}将不能再查看您的档案；以后如需恢复，要重新授权。`,
    family_withdrawYes: "确定撤销", family_withdrawNo: "不撤销，返回", family_withdrawing: "正在撤销……",
    family_formTitle: "授权一位家人", family_name: "家人姓名", family_nid: "家人的身份证号",
    family_nidHint: "18 位，最后一位可能是 X", family_rel: "这位家人是您的", family_end: "授权到哪一天",
    family_howTheySignIn: "家人需要已在本医共体医院建档，并用自己的身份证号和手机号登录，登录后选择查看您的档案。",
    family_grant: "授权这位家人查看我的档案", family_granting: "正在授权……", family_granted: (n) => `已授权${n}查看您的档案。`,
    family_needName: "请填写家人的姓名。", family_badNid: "身份证号应为 18 位（最后一位可以是 X），请检查。",
    family_failed: "没有办成：", family_proxyCannot: "只有档案本人（或在医院服务台）才能授权或撤销家人代查。",
    who_family: (n, app) => `家人${n}${app ? "通过「" + app + "」" : ""}代您`, who_family_access: "设置或撤销了家人代查授权",
    referTo: "接诊", referBy: "转出", progress: "进展", doctorSuffix: " 医生",
    docDownload: (t) => `下载${t}`, document: "文书",
    range: "参考范围", flagHigh: "偏高", flagLow: "偏低", flagAbn: "异常", flagCritHigh: "危急偏高",
    flagCritLow: "危急偏低", flagOut: "超出参考范围", flagNormal: "正常", abnormalCount: (n) => `${n} 项异常`,
    resultsCount: (n) => `${n} 项结果`,
    // a result's or report's status (R4 observation-status, diagnostic-report-status) where it is not
    // simply final: a preliminary value may change, a withdrawn one is no result (pages31)
    obsStatus: { registered: "已登记，结果未出", partial: "部分结果，其余未出", preliminary: "初步结果，可能更改",
      // R4 cancelled ("not started or not completed"; OBX-11 X cannot be obtained, N not asked): not
      // "called off" (pagesfix31)
      // amended: R4 "modified ... updates/new information and corrections" -- OBX-11 A and B (appended,
      // "without change to the original result values") alike, so 已更新, not 已更正 (pages33)
      corrected: "已更正", amended: "已更新", appended: "已补充", cancelled: "未完成",
      "entered-in-error": "医院已作废此结果（录入有误）", final: "", unknown: "" },
    // beside a value away from its row (trend, timeline): one that may change or was not completed
    obsMark: { registered: "初步", partial: "初步", preliminary: "初步", cancelled: "未完成", corrected: "已更正", amended: "已更新" },
    // a value's words (yes/no, why a result has none) are shared/value.js's: the auditors' evidence says them too
    hrMark: "HR 互认", hrMarkLong: (s) => `可互认结果（${s}）`, hrCommunity: "医共体内互认",
    imagingFindings: "检查所见", imagingConclusion: "诊断意见", modality: "检查方式", studyUid: "影像检查号（调阅影像用）",
    who_intro: "下面是查看或改动过您档案的机构和人员。如有疑问，请到医院服务台咨询。",
    who_hideOwn: "不显示我本人的查看", refresh: "刷新",
    who_none: "暂无记录。",
    who_role: { system: "医院信息系统", user: "医务人员", auditor: "审计人员", "patient-app": "居民手机应用",
      resident: "您本人", "other-resident": "另一位居民", family: "家人代查", "sending-institution": "医院发来病历",
      unauthenticated: "未登录的访问", other: "其他" },
    who_what: { read: "查看了", search: "查询了", export: "导出了", write: "写入或修改了", delete: "删除了",
      import: "发来了", "sign-in": "登录", "sign-out": "退出", link: "关联了档案", review: "复核了", operation: "处理了",
      "family-access": "设置了家人代查" },
    who_tried: { read: "试图查看", search: "试图查询", export: "试图导出", write: "试图修改", delete: "试图删除" },
    who_outcome_refused: "被拒绝", who_outcome_failed: "未成功",
    who_times: (n) => `${n} 次`, who_your: "您的", who_via: (a) => `（通过「${a}」）`,
    who_types_all: "档案",
    who_phone: "核对身份证后，登记或更改了您接收验证码的手机号",
    who_signin_attempt: "有人输入了您的身份证号申请登录（验证码只发到您登记的手机）",
    types: { Patient: "基本信息", Observation: "检验结果", DiagnosticReport: "检查报告", Encounter: "就诊记录",
      Condition: "诊断", AllergyIntolerance: "过敏", Immunization: "疫苗接种", MedicationRequest: "处方",
      MedicationDispense: "发药", MedicationStatement: "用药", MedicationAdministration: "给药",
      Appointment: "预约", ServiceRequest: "检查/转诊申请", Task: "转诊进展", DocumentReference: "文书",
      ImagingStudy: "影像", Procedure: "手术/操作", AuditEvent: "访问记录", Specimen: "标本",
      Coverage: "医保", Account: "费用账户", ChargeItem: "费用", RelatedPerson: "家人/联系人", DetectedIssue: "重复检查提示",
      Consent: "授权", Medication: "药品" },
    printed: (d) => `打印时间：${d}`,
    summaryNote: "此摘要由居民本人从医共体健康档案打印，仅供参考，以医院原始报告为准。",
  },
  en: {
    title: "My health records",
    skip: "Skip to content",
    intro: "Your visits, diagnoses, medicines, vaccinations, allergies, test results and imaging reports from every member hospital of the community.",
    signin: "Sign in",
    signout: "Sign out",
    signinHelp: "You need your resident ID card number and the mobile number registered at a hospital (for the code).",
    noPhone: "No mobile number on file, or no code arrives? Take your ID card to the desk (registration counter) of any member hospital to register or change your number, then sign in.",
    loading: "Loading your records, please wait…",
    loaded: "Your records are loaded.",
    sessionExpired: "Your session has expired. Please sign in again.",
    familyEnded: {
      withdrawn: "The family access was withdrawn by the person: their record is no longer open to you.",
      expired: "The family access has expired: their record is no longer open to you.",
      "not-started": "The family access has not started yet.",
      moved: "The hospital has filed the record this access was given for under another person: the access no longer holds, and the person must grant it again.",
      apart: "The hospital has taken the record this access was given for out of its person (checking whose it is): the access cannot be used until it is put back, or the person grants it again.",
      filed: "The record had no ID number when this access was given and has since been filed under a person: whether that is the person it was given for cannot be told, so the access no longer holds and the person must grant it again.",
      joined: "A record joined to the one this access was given for is another person's (the hospital is checking): the access cannot be used for now.",
      unread: "The identity records of this access cannot be checked just now: it cannot be used for the moment. Please sign in again later.",
      ended: "This family access can no longer be used: their record is no longer open to you.",
    },
    familyEndedAfter: " Sign in again to see your own record.",
    signinEnded: "Sign-in did not finish: ",
    exportIncomplete: "The download did not finish: some records could not be read, so no incomplete record was saved. Please try again later.",
    refused: "The server refused to show these records, so they are not shown below (which does not mean there are none).",
    partlyRefused: "The server refused to show some records; the parts marked are not shown.",
    partial: "Only part of these records could be read: what is below is not all of them. Please refresh the page later.",
    partlyShown: "Some records could only be read in part; the parts marked show only some of them. Please refresh later.",
    stateMismatch: "Sign-in did not finish. Please sign in again.",
    unreadable: "The server did not answer, so these records could not be read and what is below may be incomplete. Please refresh the page later.",
    partlyLoaded: "Some records could not be read just now (the server did not answer); the parts marked may be incomplete. Please refresh later.",
    allergyUnreadable: "Your allergies could not be read just now. Please refresh later, and tell your doctor about any allergies.",
    signinFailed: "Sign-in did not finish. Please sign in again; if it keeps failing, ask at a hospital's service desk.",
    signinUnanswered: "The server did not answer, so sign-in did not finish. Please sign in again in a moment.",
    signinDenied: "Sign-in was cancelled or not agreed, so your record was not opened. Sign in again when you need it.",
    bigText: "Large text", bigTextOn: "Large text: on", bigTextOff: "Large text: off",
    language: "中文", languageLabel: "切换到中文",
    print: "Print summary", exportFhir: "Download my health records (FHIR format)", exporting: "Preparing the download…", exported: "Downloaded.",
    exportHint: "A data file in FHIR, the international health-data format, for another hospital or a health app to read; it is not for reading as it is -- read your records here, or print the summary.",
    exportName: (d) => `health-records-${d}.json`,
    sections: "Record sections", backToSections: "Back to sections", bannerLabel: "About you",
    tab_timeline: "All", tab_visits: "Visits", tab_diagnoses: "Diagnoses", tab_meds: "Medicines",
    tab_immunisations: "Vaccines", tab_allergies: "Allergies", tab_appointments: "Appointments",
    tab_referrals: "Referrals", tab_documents: "Documents", tab_results: "Lab results", tab_trends: "Trends",
    tab_imaging: "Imaging", tab_who: "Who looked at my record",
    h_timeline: "Everything, newest first", h_visits: "Visits", h_diagnoses: "Diagnoses", h_meds: "Medicines",
    h_immunisations: "Vaccinations", h_allergies: "Allergies", h_appointments: "Appointments",
    h_referrals: "Referrals", h_documents: "Documents and reports", h_results: "Lab results",
    h_trends: "Lab trends", h_imaging: "Imaging", h_who: "Who looked at my record",
    none: "Nothing here yet",
    visitByRecords: (d, what) => `Visit date not stated; the ${what} filed under this visit are dated ${d}`,
    visitOnRecordsDay: (what) => `Visit date not stated; shown on the day of the ${what} filed under it`,
    visitUndated: "Visit date not stated",
    datedBy: { tests: "tests", meds: "prescriptions and medicines", vaccines: "vaccinations", referral: "referrals" },
    withdrawnRecord: "Withdrawn by the hospital (entered in error)",
    undated: "Date not stated", colon: ": ", sep: ", ", paren: (x) => ` (${x})`, andMore: " and more",
    noTrends: "A trend appears once a test has two or more results.",
    records: (n, gone) => `${n} record${n === 1 ? "" : "s"}` + (gone ? ` (and ${gone} withdrawn)` : ""),
    institutions: (list) => `From: ${list.join(", ")}`,
    sex: { male: "Male", female: "Female", other: "Other", unknown: "Unknown" },
    born: "Born", age: (n) => `${n} years`, idNumber: "ID number",
    unknownInst: "Institution not stated",
    kind: {
      visit: "Visit", diagnosis: "Diagnosis", med: "Medicine", immunisation: "Vaccine", allergy: "Allergy",
      appointment: "Appointment", referral: "Referral", document: "Document", result: "Lab", imaging: "Imaging",
    },
    encClass: { IMP: "Inpatient", ACUTE: "Inpatient", NONAC: "Inpatient", AMB: "Outpatient", EMER: "Emergency",
      HH: "Home care", VR: "Online", OBSENC: "Observation", PRENC: "Pre-admission", SS: "Day surgery" },
    encStatus: { "in-progress": "In hospital", finished: "Finished", planned: "Planned", arrived: "Arrived",
      cancelled: "Cancelled", onleave: "On leave", triaged: "Triaged", "entered-in-error": "Entered in error",
      unknown: "" },
    encStatusVisit: { "in-progress": "Came in" },
    reason: "Reason", doctor: "Doctor", ward: "Department/ward", wardCodes: "hospital's codes", from: "From", to: "To",
    condStatus: { active: "Active", recurrence: "Recurred", relapse: "Relapsed", inactive: "Inactive",
      remission: "In remission", resolved: "Resolved" },
    condVerif: { unconfirmed: "Unconfirmed", provisional: "Provisional", differential: "Differential", confirmed: "Confirmed",
      refuted: "Ruled out", "entered-in-error": "Entered in error" },
    condCat: { "encounter-diagnosis": "Visit diagnosis", "problem-list-item": "Long-term problem" },
    onset: "Onset",
    medKind: { MedicationRequest: "Prescription", MedicationDispense: "Dispensed",
      MedicationStatement: "Medicine taken", MedicationAdministration: "Given" },
    medStatus: { active: "Active", completed: "Completed", stopped: "Stopped", cancelled: "Cancelled",
      "on-hold": "On hold", "entered-in-error": "Entered in error", "in-progress": "In progress", draft: "Draft",
      preparation: "Being prepared", declined: "Not dispensed", intended: "Intended", "not-taken": "Not taken",
      "not-done": "Not given", unknown: "" },
    dose: "How to take", medUnnamed: "Medicine (name on the hospital's prescription)", quantity: "Quantity",
    immStatus: { completed: "Given", "not-done": "Not given", "entered-in-error": "Entered in error" },
    doseNo: (n) => `Dose ${n}`, lot: "Lot", site: "Site", amount: "Amount", route: "Route",
    allergyCrit: { high: "Severe", low: "Mild", "unable-to-assess": "Not assessed" },
    allergyCat: { food: "Food", medication: "Medicine", environment: "Environment", biologic: "Biologic" },
    reaction: "Reaction", allergyBanner: "Allergies", allergyStatus: { active: "Still allergic", inactive: "No longer allergic", resolved: "Resolved" },
    apptStatus: { proposed: "To be confirmed", pending: "To be confirmed", booked: "Booked", arrived: "Arrived",
      fulfilled: "Attended", cancelled: "Cancelled", noshow: "Missed", "entered-in-error": "Entered in error",
      "checked-in": "Checked in", waitlist: "Waiting list" },
    where: "Where", dept: "Department", note: "Note",
    refStatus: { draft: "Draft", active: "Active", "on-hold": "On hold", revoked: "Withdrawn", completed: "Completed",
      "entered-in-error": "Entered in error", unknown: "Unknown" },
    taskStatus: { draft: "Draft", requested: "Sent", received: "Received", accepted: "Accepted", rejected: "Declined",
      ready: "Ready", cancelled: "Cancelled", "in-progress": "In progress", "on-hold": "On hold", failed: "Failed",
      completed: "Completed", "entered-in-error": "Entered in error" },
    refState: { requested: "Requested, waiting for the other hospital", accepted: "Accepted: go as arranged",
      rejected: "The other hospital could not accept", cancelled: "Referral withdrawn", arrived: "Seen at the other hospital",
      completed: "Treatment there completed", "referred-back": "Referred back to your own hospital",
      "entered-in-error": "Entered in error" },
    tab_family: "Family access", h_family: "Family access",
    relation: { CHILD: "child", PRN: "parent", SPS: "spouse", SIB: "sibling", GRNDCHILD: "grandchild",
      GRPRN: "grandparent", GUARD: "guardian", FAMMEMB: "family member" },
    acting_title: (whose) => `You are viewing ${whose || "a family member"}'s record on their behalf.`,
    acting_body: (me, rel) => `Every look you (${me}${rel ? ", " + rel : ""}) take shows in their "who looked at my record"; they can withdraw access at any time.`,
    family_intro: "Let a family member (a child, a parent) sign in with their own phone and ID number to see your record on your behalf. You can withdraw it at any time.",
    family_none: "You have not let any family member see your record.",
    family_state: { active: "Can view", withdrawn: "Withdrawn", expired: "Expired" },
    family_until: "Until", family_ended: "Ended", family_noEnd: "until you withdraw it", family_since: "Granted on",
    family_byDesk: "Arranged at a hospital desk after checking ID cards",
    family_withdraw: (n) => `Withdraw ${n}'s access`, family_withdrawn: "Withdrawn. They can no longer see your record.",
    family_confirmWithdraw: (n) => `Withdraw ${n}'s access? It ends at once: ${n} will no longer see your record, and only a new grant gives it back.`,
    family_withdrawYes: "Withdraw", family_withdrawNo: "Keep it, go back", family_withdrawing: "Withdrawing…",
    family_formTitle: "Let a family member see my record", family_name: "Their name", family_nid: "Their resident ID number",
    family_nidHint: "18 characters, the last may be X", family_rel: "They are my", family_end: "Until (date)",
    family_howTheySignIn: "They need a record at a member hospital, and sign in with their own ID number and phone, then choose your record.",
    family_grant: "Let them see my record", family_granting: "Granting…", family_granted: (n) => `${n} can now see your record.`,
    family_needName: "Please enter their name.", family_badNid: "An ID number has 18 characters (the last may be X). Please check it.",
    family_failed: "Not done: ", family_proxyCannot: "Only the person themselves (or a hospital desk) can grant or withdraw family access.",
    who_family: (n, app) => `Your family member ${n}${app ? " using “" + app + "”" : ""}, on your behalf,`, who_family_access: " set up or withdrew family access",
    referTo: "Receiving", referBy: "Referred by", progress: "Progress", doctorSuffix: "",
    docDownload: (t) => `Download ${t}`, document: "Document",
    range: "Normal range", flagHigh: "High", flagLow: "Low", flagAbn: "Abnormal", flagCritHigh: "Critically high",
    flagCritLow: "Critically low", flagOut: "Outside normal range", flagNormal: "Normal",
    abnormalCount: (n) => `${n} abnormal`, resultsCount: (n) => `${n} result${n === 1 ? "" : "s"}`,
    obsStatus: { registered: "Registered, no result yet", partial: "Partial, more to come",
      preliminary: "Preliminary, may change", corrected: "Corrected", amended: "Updated", appended: "Added to",
      cancelled: "Not completed", "entered-in-error": "Withdrawn by the hospital (entered in error)", final: "", unknown: "" },
    obsMark: { registered: "preliminary", partial: "preliminary", preliminary: "preliminary", cancelled: "not completed",
      corrected: "corrected", amended: "updated" },
    hrMark: "HR recognised", hrMarkLong: (s) => `Mutually recognised result (${s})`, hrCommunity: "within the medical community",
    imagingFindings: "Findings", imagingConclusion: "Conclusion", modality: "Modality", studyUid: "Study Instance UID (to fetch the images)",
    who_intro: "These institutions and people looked at or changed your record. Ask at a hospital desk if anything seems wrong.",
    who_hideOwn: "Hide my own views", refresh: "Refresh",
    who_none: "Nothing recorded yet.",
    who_role: { system: "Hospital system", user: "Health worker", auditor: "Auditor", "patient-app": "Resident's phone app",
      resident: "You", "other-resident": "Another resident", family: "Family member", "sending-institution": "Hospital sending records",
      unauthenticated: "Unauthenticated request", other: "Other" },
    who_what: { read: "viewed", search: "searched", export: "exported", write: "wrote or changed", delete: "deleted",
      import: "sent", "sign-in": "signed in", "sign-out": "signed out", link: "linked records", review: "reviewed",
      operation: "processed", "family-access": "set up family access" },
    who_tried: { read: "tried to view", search: "tried to search", export: "tried to export", write: "tried to change",
      delete: "tried to delete" },
    who_outcome_refused: "refused", who_outcome_failed: "failed",
    who_times: (n) => `${n} time${n === 1 ? "" : "s"}`, who_your: "your", who_via: (a) => ` (using “${a}”)`,
    who_types_all: "record",
    who_phone: " registered or changed the phone number your sign-in code goes to, after checking your ID card",
    who_signin_attempt: "Someone entered your ID number to sign in (the code goes only to your registered phone)",
    types: { Patient: "personal details", Observation: "lab results", DiagnosticReport: "reports", Encounter: "visits",
      Condition: "diagnoses", AllergyIntolerance: "allergies", Immunization: "vaccinations",
      MedicationRequest: "prescriptions", MedicationDispense: "dispensed medicines", MedicationStatement: "medicines",
      MedicationAdministration: "medicines given", Appointment: "appointments", ServiceRequest: "orders and referrals",
      Task: "referral progress", DocumentReference: "documents", ImagingStudy: "imaging", Procedure: "procedures",
      AuditEvent: "access records", Specimen: "specimens", Coverage: "insurance", Account: "accounts",
      ChargeItem: "charges", RelatedPerson: "family and contacts", DetectedIssue: "repeat-test notices",
      Consent: "consents", Medication: "medicines" },
    printed: (d) => `Printed: ${d}`,
    summaryNote: "Printed by the resident from the community's health records, for information; the hospital's original report prevails.",
  },
};

const LANGS = Object.keys(WORDS);

// Beijing's clock and calendar: ../shared/beijing.js (loaded before this file).
const { beijing, beijingDay } = window.hurenBeijing;

/** The day a FHIR date or date-time falls on in Beijing: a record at 2026-03-04T20:00:00Z, or at
 * 2026-03-04T20:00:00-05:00, is of the 5th (a date alone is its own day). Any offset is converted:
 * only "Z" and "+00:00" had been, so a time written with another offset was shown on its writer's
 * clock, a day and hours apart from what the staff pages (always Beijing) say of the same record.
 * Undated: "". */
const OFFSET_TIME = /T\d{2}:\d{2}.*(Z|[+-]\d{2}:\d{2})$/;
function localDay(value) {
  const s = String(value || "");
  if (OFFSET_TIME.test(s) && !Number.isNaN(Date.parse(s))) return beijing(new Date(s)).slice(0, 3).join("-");
  return s.slice(0, 10);
}

/** Newest first, for sort(): by the day each falls on (`localDay`), then by the instant within it.
 * The text alone misorders instants written with other offsets: 2026-03-04T20:00:00Z is Beijing's
 * 5th but sorts before 2026-03-04T22:00+08:00. Undated ("") last. */
function newestFirst(a, b) {
  const da = localDay(a), db = localDay(b);
  if (da !== db) return db.localeCompare(da);
  const ta = Date.parse(a), tb = Date.parse(b);
  if (!Number.isNaN(ta) && !Number.isNaN(tb) && ta !== tb) return tb - ta;
  return String(b || "").localeCompare(String(a || ""));
}

/** Dates as people write them: 2026年9月20日 / 20 Sep 2026. A date-time is shown in Beijing time,
 * whatever offset it was written with (a hospital's +08:00 reads as written; it had been the phone's
 * zone, and then the writer's: a phone set to UTC read a 09:00 visit as 01:00). */
function formatDate(value, lang, withTime) {
  if (!value) return "";
  const m = /^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?(?:T(\d{2}):(\d{2}))?/.exec(value);
  if (!m) return value;
  let [, y, mo, d, hh, mm] = m;
  if (OFFSET_TIME.test(value) && hh !== undefined) {
    const t = new Date(value);
    if (!Number.isNaN(t.getTime())) [y, mo, d, hh, mm] = beijing(t);
  }
  const time = withTime && hh !== undefined ? ` ${hh}:${mm}` : "";
  if (lang === "en") {
    const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    if (!mo) return y;
    if (!d) return `${months[+mo - 1]} ${y}`;
    return `${+d} ${months[+mo - 1]} ${y}${time}`;
  }
  if (!mo) return `${y}年`;
  if (!d) return `${y}年${+mo}月`;
  return `${y}年${+mo}月${+d}日${time}`;
}

window.MeI18n = { WORDS, LANGS, formatDate, localDay, beijingDay, newestFirst };
})();
