// A seeded generator of a realistic Open edX database in MySQL/MariaDB: every MySQL table of the
// `openedx` preset, with the column types edx-platform's migrations give them, plus the
// split-modulestore course index. The same flags and seed always give the same rows.
//
//   bun scripts/gen-openedx-data.ts [--users 500] [--courses 8] [--enrollments 2000]
//     [--studentmodule 20000] [--seed 1] [--host 127.0.0.1] [--port 3306] [--user root]
//     [--password ""] [--database edxapp] [--socket PATH]
//
// The password can also come from $MYSQL_PWD, which keeps it out of the process list.
// The tables are dropped and created again. Prints a JSON summary (rows per table) on stdout.
// Rows go in as multi-row INSERTs, escaped by the driver, over a few connections at once.
import { parseArgs } from "node:util";
import mysql from "mysql2/promise";

export interface GenerateOptions {
  users: number;
  courses: number;
  enrollments: number;
  studentmodule: number;
  seed: number;
  connection: {
    host?: string;
    port?: number;
    user: string;
    password?: string;
    database: string;
    socket?: string;
  };
  /** progress lines (default: none) */
  log?: (message: string) => void;
}

export interface GenerateResult {
  seed: number;
  database: string;
  seconds: number;
  /** rows per table, the preset's tables and the course index */
  tables: Record<string, number>;
}

type Value = string | number | null;
type Row = Value[];

// ---- deterministic randomness ----------------------------------------------------------------

/** sfc32: small, fast, and the same sequence on every platform for a given seed. */
class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }
  next(): number {
    this.a >>>= 0;
    this.b >>>= 0;
    this.c >>>= 0;
    this.d >>>= 0;
    let t = (this.a + this.b) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.d = (this.d + 1) | 0;
    t = (t + this.d) | 0;
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  hex(length: number): string {
    let out = "";
    while (out.length < length)
      out += Math.floor(this.next() * 4294967296)
        .toString(16)
        .padStart(8, "0");
    return out.slice(0, length);
  }
}

// ---- time: everything happens between START and END, whatever day the generator runs ----------

const START = Date.UTC(2024, 0, 8);
const END = Date.UTC(2024, 6, 1);
const DAY = 86_400_000;

/** MySQL DATETIME(6) text, UTC, with microseconds. */
function datetime(ms: number, rng: Random): string {
  const clamped = Math.min(Math.max(ms, START), END - 1000);
  const iso = new Date(clamped).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(rng.int(0, 999_999)).padStart(6, "0")}`;
}

function between(rng: Random, from: number, to: number): number {
  return from + Math.floor(rng.next() * Math.max(1, to - from));
}

// ---- the people and the courses ---------------------------------------------------------------

const FIRST = [
  "Ana",
  "José",
  "María José",
  "Zoë",
  "Łukasz",
  "Ольга",
  "李",
  "محمد",
  "Siobhán",
  "Nguyễn",
  "Ingrid",
  "O'Brien",
  "Jean-Luc",
  "Aroha",
  "Søren",
  "Priya",
  "Chloé",
  "Kwame",
  "Yūki",
  "Björk",
];
const LAST = [
  "García",
  "Müller",
  "Smith",
  "Álvarez",
  "Ivanova",
  "伟",
  "Al-Farsi",
  "Ó Súilleabháin",
  "Thị Minh",
  "Nakamura",
  "Dupont",
  'de "la" Vega',
  "Okafor",
  "Kowalski",
  "Lindqvist",
  "Patel",
  "Ngata",
  "Rossi",
  "Þórsdóttir",
  "Smith, Jr.",
];
const COUNTRIES = [
  "AR",
  "BR",
  "CN",
  "DE",
  "EG",
  "ES",
  "FR",
  "GB",
  "IN",
  "JP",
  "MX",
  "NG",
  "NZ",
  "US",
  "UY",
  "VN",
];
const LANGUAGES = ["en", "es", "fr", "pt-br", "zh-cn", "ar", "de", "ja"];
const EDUCATION = ["p", "m", "b", "a", "hs", "jhs", "el", "none", "other"];
const GENDERS = ["m", "f", "o"];

/** Course keys as Open edX writes them, some with the characters opaque-keys allows beyond [A-Za-z0-9]. */
const FIXED_COURSES: [string, string, string][] = [
  ["edX", "DemoX", "Demo_Course"],
  ["MITx", "6.00.1x", "2T2024"],
  ["UPValenciaX", "BD~201.1x", "3T2024"],
  ["Universität_Wien", "Ökonomie-1", "2024_S"],
  ["清华大学", "THU-00001X", "2024_T1"],
  ["HarvardX", "CS50", "X"],
];
const ORGS = ["edX", "MITx", "HarvardX", "UPValenciaX", "aulasneo", "OpenCraft", "UC3Mx", "Université_Paris"];
const RUNS = ["1T2024", "2T2024", "2024_T1", "2024_T2", "self_paced", "2024-03"];
const TITLES = [
  "Introduction to Computer Science",
  "Big Data: análisis de datos",
  '"Quoted" Title: A Course',
  "Statistik für Ökonom:innen",
  "数据结构与算法",
  "Physics, Part 1",
  "C:\\Users — paths & escapes",
  "Éthique de l'IA",
];

interface Course {
  id: string;
  org: string;
  code: string;
  run: string;
  title: string;
  start: number;
  end: number | null;
  /** relative popularity */
  weight: number;
  blocks: Block[];
  cohorts: number[];
}

interface Block {
  type: string;
  id: string;
  key: string;
}

function makeCourses(rng: Random, count: number): Course[] {
  const courses: Course[] = [];
  const seen = new Set<string>();
  for (let i = 0; courses.length < count; i++) {
    const [org, code, run] =
      i < FIXED_COURSES.length
        ? FIXED_COURSES[i]!
        : [
            rng.pick(ORGS),
            `${rng.pick(["CS", "DS", "PH", "BIO", "ECO"])}${rng.int(100, 999)}x`,
            rng.pick(RUNS),
          ];
    const id = `course-v1:${org}+${code}+${run}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const start = between(rng, START - 60 * DAY, END - 60 * DAY);
    courses.push({
      id,
      org,
      code,
      run,
      title: i < TITLES.length ? TITLES[i]! : `${rng.pick(TITLES)} ${i}`,
      start,
      end: rng.chance(0.3) ? null : start + rng.int(60, 180) * DAY,
      weight: 1 / (courses.length + 1) ** 0.8,
      blocks: [],
      cohorts: [],
    });
  }
  return courses;
}

/** The course's blocks, as many as the studentmodule rows per enrolment need. */
function addBlocks(rng: Random, course: Course, count: number): void {
  const types = [
    "problem",
    "problem",
    "problem",
    "video",
    "video",
    "sequential",
    "chapter",
    "openassessment",
  ];
  for (let i = 0; i < count; i++) {
    const type = i === 0 ? "course" : rng.pick(types);
    const id = i === 0 ? "course" : rng.hex(32);
    course.blocks.push({
      type,
      id,
      key: `block-v1:${course.org}+${course.code}+${course.run}+type@${type}+block@${id}`,
    });
  }
}

interface User {
  id: number;
  username: string;
  name: string;
  email: string;
  joined: number;
}

function makeUsers(rng: Random, count: number): User[] {
  const users: User[] = [];
  for (let id = 1; id <= count; id++) {
    const first = rng.pick(FIRST);
    const last = rng.pick(LAST);
    users.push({
      id,
      username:
        id === 1
          ? "admin"
          : `${
              first
                .normalize("NFD")
                .replace(/[^A-Za-z]/g, "")
                .toLowerCase() || "user"
            }_${id}`,
      name: `${first} ${last}`,
      email: `learner${id}@example.${rng.pick(["com", "org", "edu.ar"])}`,
      joined: between(rng, START - 90 * DAY, END - 10 * DAY),
    });
  }
  return users;
}

interface Enrollment {
  id: number;
  user: User;
  course: Course;
  created: number;
}

function makeEnrollments(rng: Random, users: User[], courses: Course[], wanted: number): Enrollment[] {
  const total = courses.reduce((sum, c) => sum + c.weight, 0);
  const count = Math.min(wanted, Math.floor(users.length * courses.length * 0.9));
  const seen = new Set<number>();
  const out: Enrollment[] = [];
  while (out.length < count) {
    let r = rng.next() * total;
    let c = 0;
    while (c < courses.length - 1 && r >= courses[c]!.weight) r -= courses[c++]!.weight;
    // A full popular course sends the rest to the least popular ones.
    const user = rng.int(0, users.length - 1);
    let key = user * courses.length + c;
    while (seen.has(key)) key = rng.int(0, users.length * courses.length - 1);
    seen.add(key);
    const course = courses[key % courses.length]!;
    const u = users[Math.floor(key / courses.length)]!;
    out.push({
      id: out.length + 1,
      user: u,
      course,
      created: between(rng, Math.max(u.joined, course.start - 30 * DAY), END - DAY),
    });
  }
  return out;
}

/** Learners stop working on a course two weeks after it ends: ended courses stop changing. */
function lastActivity(e: Enrollment): number {
  const end = e.course.end === null ? END : Math.min(END, e.course.end + 14 * DAY);
  return Math.max(e.created + DAY, end);
}

// ---- tables ------------------------------------------------------------------------------------

interface TableSpec {
  name: string;
  ddl: string;
  columns: string[];
  rows: () => Iterable<Row>;
}

const bool = (rng: Random, p: number): number => (rng.chance(p) ? 1 : 0);

function problemState(rng: Random, block: Block, modified: number): string {
  const answerId = `${block.id}_2_1`;
  const answers = [
    "choice_1",
    "42",
    '"quoted" answer',
    "C:\\temp\\answer.txt",
    "línea con acento",
    "a, b, c",
    "\\begin{equation}",
  ];
  const attempts = rng.int(0, 5);
  const state: Record<string, unknown> = {
    seed: rng.int(1, 1000),
    attempts,
    done: attempts > 0,
    last_submission_time: new Date(modified).toISOString().replace(/\.\d+Z$/, "Z"),
    input_state: { [answerId]: {} },
  };
  if (attempts > 0) {
    state.correct_map = {
      [answerId]: {
        correctness: rng.pick(["correct", "incorrect"]),
        npoint_map: null,
        msg: "",
        hint: "",
        hintmode: null,
        queuestate: null,
        answervariable: null,
      },
    };
    state.student_answers = { [answerId]: rng.pick(answers) };
    state.score = { raw_earned: rng.int(0, 1), raw_possible: 1 };
  }
  return JSON.stringify(state);
}

function moduleState(rng: Random, block: Block, modified: number): string | null {
  switch (block.type) {
    case "problem":
      return problemState(rng, block, modified);
    case "video":
      return JSON.stringify({
        saved_video_position: `00:${String(rng.int(0, 59)).padStart(2, "0")}:${String(rng.int(0, 59)).padStart(2, "0")}`,
        speed: rng.pick([null, 1.0, 1.25, 1.5, 2.0]),
        transcript_language: rng.pick(["en", "es", "zh"]),
      });
    case "sequential":
    case "chapter":
    case "course":
      return JSON.stringify({ position: rng.int(1, 6) });
    default:
      return rng.chance(0.5) ? JSON.stringify({ submission_uuid: rng.hex(32), has_saved: true }) : "{}";
  }
}

function defineTables(
  rng: Random,
  users: User[],
  courses: Course[],
  enrollments: Enrollment[],
  studentmodule: number,
): TableSpec[] {
  const E = enrollments.length;
  const userByEnrollment = (i: number) => enrollments[i % E]!;
  const cohortIds: { id: number; course: Course; name: string }[] = [];
  for (const course of courses) {
    for (const name of ["Default Group", rng.pick(["Grupo A", "Cohorte 2024", "Équipe B", 'VIP "gold"'])]) {
      cohortIds.push({ id: cohortIds.length + 1, course, name });
      course.cohorts.push(cohortIds.length);
    }
  }
  const enterprises = [
    { uuid: rng.hex(32), name: "Acme Learning, Inc.", slug: "acme" },
    { uuid: rng.hex(32), name: "Universidad Ñandú", slug: "nandu" },
  ];
  const studentItems = Math.max(1, Math.floor(E / 2));
  const submissions = Math.floor(studentItems * 1.2);

  return [
    {
      name: "auth_user",
      columns: [
        "id",
        "password",
        "last_login",
        "is_superuser",
        "username",
        "first_name",
        "last_name",
        "email",
        "is_staff",
        "is_active",
        "date_joined",
      ],
      ddl: `CREATE TABLE auth_user (
  id int NOT NULL AUTO_INCREMENT,
  password varchar(128) NOT NULL,
  last_login datetime(6) DEFAULT NULL,
  is_superuser tinyint(1) NOT NULL,
  username varchar(150) NOT NULL,
  first_name varchar(150) NOT NULL,
  last_name varchar(150) NOT NULL,
  email varchar(254) NOT NULL,
  is_staff tinyint(1) NOT NULL,
  is_active tinyint(1) NOT NULL,
  date_joined datetime(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY username (username),
  UNIQUE KEY auth_user_email_1c89df09_uniq (email)
)`,
      *rows() {
        for (const u of users) {
          const [first, ...rest] = u.name.split(" ");
          yield [
            u.id,
            `pbkdf2_sha256$600000$${rng.hex(22)}$${rng.hex(43)}`,
            rng.chance(0.15) ? null : datetime(between(rng, u.joined, END), rng),
            u.id === 1 ? 1 : 0,
            u.username,
            first ?? "",
            rest.join(" "),
            u.email,
            u.id === 1 || rng.chance(0.01) ? 1 : 0,
            bool(rng, 0.97),
            datetime(u.joined, rng),
          ];
        }
      },
    },
    {
      name: "auth_userprofile",
      columns: [
        "id",
        "name",
        "meta",
        "courseware",
        "language",
        "location",
        "year_of_birth",
        "gender",
        "level_of_education",
        "mailing_address",
        "city",
        "country",
        "goals",
        "allow_certificate",
        "bio",
        "profile_image_uploaded_at",
        "phone_number",
        "state",
        "user_id",
      ],
      ddl: `CREATE TABLE auth_userprofile (
  id int NOT NULL AUTO_INCREMENT,
  name varchar(255) NOT NULL,
  meta longtext NOT NULL,
  courseware varchar(255) NOT NULL,
  language varchar(255) NOT NULL,
  location varchar(255) NOT NULL,
  year_of_birth int DEFAULT NULL,
  gender varchar(6) DEFAULT NULL,
  level_of_education varchar(6) DEFAULT NULL,
  mailing_address longtext,
  city longtext,
  country varchar(2) DEFAULT NULL,
  goals longtext,
  allow_certificate tinyint(1) NOT NULL,
  bio varchar(3000) DEFAULT NULL,
  profile_image_uploaded_at datetime(6) DEFAULT NULL,
  phone_number varchar(50) DEFAULT NULL,
  state varchar(2) DEFAULT NULL,
  user_id int NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY user_id (user_id),
  KEY auth_userprofile_name_50909f10 (name),
  KEY auth_userprofile_language_8948d814 (language),
  KEY auth_userprofile_location_ca92e4f6 (location),
  KEY auth_userprofile_year_of_birth_6559b9a5 (year_of_birth),
  KEY auth_userprofile_gender_44a122fb (gender),
  KEY auth_userprofile_level_of_education_93927e04 (level_of_education)
)`,
      *rows() {
        for (const u of users) {
          yield [
            u.id,
            u.name,
            rng.chance(0.8) ? "" : JSON.stringify({ session_id: rng.hex(16), "6002x_exit_response": {} }),
            "course.xml",
            rng.chance(0.7) ? "" : rng.pick(LANGUAGES),
            "",
            rng.chance(0.3) ? null : rng.int(1950, 2008),
            rng.chance(0.4) ? null : rng.pick(GENDERS),
            rng.chance(0.4) ? null : rng.pick(EDUCATION),
            rng.chance(0.9) ? null : "Calle Falsa 123,\nSpringfield",
            rng.chance(0.5) ? null : rng.pick(["Montevideo", "São Paulo", "Köln", "東京", "Lagos", ""]),
            rng.chance(0.2) ? null : rng.pick(COUNTRIES),
            rng.chance(0.7)
              ? null
              : rng.pick(['"Learn" to code', "\\o/ grow", "Get a job, then a better one", "学习"]),
            1,
            rng.chance(0.9) ? null : `Hi, I'm ${u.name}.`,
            rng.chance(0.9) ? null : datetime(between(rng, u.joined, END), rng),
            rng.chance(0.9) ? null : `+598 9${rng.int(1000000, 9999999)}`,
            null,
            u.id,
          ];
        }
      },
    },
    {
      name: "course_overviews_courseoverview",
      columns: [
        "created",
        "modified",
        "version",
        "id",
        "_location",
        "display_name",
        "display_number_with_default",
        "display_org_with_default",
        "start",
        "end",
        "advertised_start",
        "course_image_url",
        "social_sharing_url",
        "end_of_course_survey_url",
        "certificates_display_behavior",
        "certificates_show_before_end",
        "cert_html_view_enabled",
        "has_any_active_web_certificate",
        "cert_name_short",
        "cert_name_long",
        "lowest_passing_grade",
        "days_early_for_beta",
        "mobile_available",
        "visible_to_staff_only",
        "_pre_requisite_courses_json",
        "enrollment_start",
        "enrollment_end",
        "enrollment_domain",
        "invitation_only",
        "max_student_enrollments_allowed",
        "announcement",
        "catalog_visibility",
        "course_video_url",
        "effort",
        "short_description",
        "org",
        "self_paced",
        "marketing_url",
        "eligible_for_financial_aid",
        "language",
        "certificate_available_date",
        "end_date",
        "start_date",
        "banner_image_url",
        "has_highlights",
        "allow_proctoring_opt_out",
        "enable_proctored_exams",
        "proctoring_escalation_email",
        "proctoring_provider",
        "entrance_exam_enabled",
        "entrance_exam_id",
        "entrance_exam_minimum_score_pct",
        "external_id",
        "force_on_flexible_peer_openassessments",
      ],
      ddl: `CREATE TABLE course_overviews_courseoverview (
  created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL,
  version int NOT NULL,
  id varchar(255) NOT NULL,
  _location varchar(255) NOT NULL,
  display_name longtext,
  display_number_with_default longtext NOT NULL,
  display_org_with_default longtext NOT NULL,
  start datetime(6) DEFAULT NULL,
  end datetime(6) DEFAULT NULL,
  advertised_start longtext,
  course_image_url longtext NOT NULL,
  social_sharing_url longtext,
  end_of_course_survey_url longtext,
  certificates_display_behavior longtext,
  certificates_show_before_end tinyint(1) NOT NULL,
  cert_html_view_enabled tinyint(1) NOT NULL,
  has_any_active_web_certificate tinyint(1) NOT NULL,
  cert_name_short longtext NOT NULL,
  cert_name_long longtext NOT NULL,
  lowest_passing_grade decimal(5,2) DEFAULT NULL,
  days_early_for_beta double DEFAULT NULL,
  mobile_available tinyint(1) NOT NULL,
  visible_to_staff_only tinyint(1) NOT NULL,
  _pre_requisite_courses_json longtext NOT NULL,
  enrollment_start datetime(6) DEFAULT NULL,
  enrollment_end datetime(6) DEFAULT NULL,
  enrollment_domain longtext,
  invitation_only tinyint(1) NOT NULL,
  max_student_enrollments_allowed int DEFAULT NULL,
  announcement datetime(6) DEFAULT NULL,
  catalog_visibility longtext,
  course_video_url longtext,
  effort longtext,
  short_description longtext,
  org longtext NOT NULL,
  self_paced tinyint(1) NOT NULL,
  marketing_url longtext,
  eligible_for_financial_aid tinyint(1) NOT NULL,
  language longtext,
  certificate_available_date datetime(6) DEFAULT NULL,
  end_date datetime(6) DEFAULT NULL,
  start_date datetime(6) DEFAULT NULL,
  banner_image_url longtext NOT NULL,
  has_highlights tinyint(1) DEFAULT NULL,
  allow_proctoring_opt_out tinyint(1) NOT NULL,
  enable_proctored_exams tinyint(1) NOT NULL,
  proctoring_escalation_email longtext,
  proctoring_provider longtext,
  entrance_exam_enabled tinyint(1) NOT NULL,
  entrance_exam_id varchar(255) NOT NULL,
  entrance_exam_minimum_score_pct double NOT NULL,
  external_id varchar(128) DEFAULT NULL,
  force_on_flexible_peer_openassessments tinyint(1) NOT NULL,
  PRIMARY KEY (id)
)`,
      *rows() {
        for (const c of courses) {
          const start = datetime(c.start, rng);
          const end = c.end === null ? null : datetime(c.end, rng);
          yield [
            datetime(c.start - 90 * DAY, rng),
            datetime(c.start - rng.int(1, 30) * DAY, rng),
            18,
            c.id,
            `block-v1:${c.org}+${c.code}+${c.run}+type@course+block@course`,
            c.title,
            c.code,
            c.org,
            start,
            end,
            null,
            `/asset-v1:${c.org}+${c.code}+${c.run}+type@asset+block@images_course_image.jpg`,
            null,
            null,
            rng.pick(["end", "early_no_info", "end_with_date"]),
            0,
            1,
            bool(rng, 0.5),
            "",
            "",
            rng.pick(["0.50", "0.60", "0.75", "0.00"]),
            rng.chance(0.8) ? null : rng.pick([0, 7, 3.5]),
            0,
            0,
            "[]",
            rng.chance(0.5) ? null : datetime(c.start - 30 * DAY, rng),
            null,
            null,
            0,
            rng.chance(0.9) ? null : 500,
            null,
            "both",
            rng.chance(0.6) ? null : "https://www.youtube.com/watch?v=3_yD_cEKoCk",
            rng.chance(0.5) ? null : rng.pick(["4 hours/week", "2–3 h/semana", "约 5 小时"]),
            rng.chance(0.5) ? null : `Learn ${c.title.toLowerCase()}, step by step.`,
            c.org,
            bool(rng, 0.3),
            null,
            1,
            rng.pick(["en", "es", "zh-cn", null]),
            null,
            end,
            start,
            "",
            0,
            0,
            0,
            null,
            "null",
            0,
            "",
            50,
            null,
            0,
          ];
        }
      },
    },
    {
      name: "split_modulestore_django_splitmodulestorecourseindex",
      columns: [
        "id",
        "objectid",
        "course_id",
        "org",
        "draft_version",
        "published_version",
        "library_version",
        "wiki_slug",
        "base_store",
        "edited_on",
        "last_update",
        "edited_by_id",
      ],
      ddl: `CREATE TABLE split_modulestore_django_splitmodulestorecourseindex (
  id int NOT NULL AUTO_INCREMENT,
  objectid varchar(24) NOT NULL,
  course_id varchar(255) NOT NULL,
  org varchar(255) NOT NULL,
  draft_version varchar(24) NOT NULL,
  published_version varchar(24) NOT NULL,
  library_version varchar(24) NOT NULL,
  wiki_slug varchar(255) NOT NULL,
  base_store varchar(20) NOT NULL,
  edited_on datetime(6) NOT NULL,
  last_update datetime(6) NOT NULL,
  edited_by_id int DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY objectid (objectid),
  UNIQUE KEY course_id (course_id),
  KEY split_modulestore_dj_org_4e3a2ed1 (org),
  KEY split_modulestore_dj_wiki_slug_35a6f4bf (wiki_slug)
)`,
      *rows() {
        let id = 0;
        for (const c of courses) {
          yield [
            ++id,
            rng.hex(24),
            c.id,
            c.org,
            rng.hex(24),
            rng.hex(24),
            "",
            `${c.org}.${c.code}.${c.run}`,
            "mongodb",
            datetime(c.start - 10 * DAY, rng),
            datetime(c.start - 10 * DAY, rng),
            1,
          ];
        }
        // A content library: in the index, but not a course (no published version).
        yield [
          ++id,
          rng.hex(24),
          "library-v1:edX+DemoLib",
          "edX",
          "",
          "",
          rng.hex(24),
          "",
          "mongodb",
          datetime(START, rng),
          datetime(START, rng),
          1,
        ];
      },
    },
    {
      name: "student_courseenrollment",
      columns: ["id", "course_id", "created", "is_active", "mode", "user_id"],
      ddl: `CREATE TABLE student_courseenrollment (
  id int NOT NULL AUTO_INCREMENT,
  course_id varchar(255) NOT NULL,
  created datetime(6) DEFAULT NULL,
  is_active tinyint(1) NOT NULL,
  mode varchar(100) NOT NULL,
  user_id int NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY student_courseenrollment_user_id_course_id_5d34a47f_uniq (user_id, course_id),
  KEY student_courseenrollment_course_id_a6f93be8 (course_id),
  KEY student_courseenrollment_created_79829893 (created)
)`,
      *rows() {
        for (const e of enrollments) {
          yield [
            e.id,
            e.course.id,
            datetime(e.created, rng),
            bool(rng, 0.92),
            rng.pick(["audit", "audit", "audit", "verified", "honor"]),
            e.user.id,
          ];
        }
      },
    },
    {
      name: "courseware_studentmodule",
      columns: [
        "id",
        "module_type",
        "module_id",
        "state",
        "grade",
        "created",
        "modified",
        "max_grade",
        "done",
        "course_id",
        "student_id",
      ],
      ddl: `CREATE TABLE courseware_studentmodule (
  id bigint NOT NULL AUTO_INCREMENT,
  module_type varchar(32) NOT NULL,
  module_id varchar(255) NOT NULL,
  state longtext,
  grade double DEFAULT NULL,
  created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL,
  max_grade double DEFAULT NULL,
  done varchar(8) NOT NULL,
  course_id varchar(255) NOT NULL,
  student_id int NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY courseware_studentmodule_student_id_module_id_course_id_uniq (student_id, module_id, course_id),
  KEY courseware_studentmodule_module_type_f4f8863f (module_type),
  KEY courseware_studentmodule_course_id_0a8a4c1d (course_id),
  KEY courseware_studentmodule_modified_f3ed7c2c (modified),
  KEY courseware_studentmodule_module_id_c2ab2d0b (module_id)
)`,
      *rows() {
        // Row i: enrolment i mod E, the course's block i div E, so (student, module, course) is unique.
        for (let i = 0; i < studentmodule; i++) {
          const e = userByEnrollment(i);
          const block = e.course.blocks[Math.floor(i / E)]!;
          const last = lastActivity(e);
          const created = between(rng, e.created, last);
          const modified = rng.chance(0.3)
            ? created
            : between(rng, created, Math.min(last, created + 60 * DAY));
          const isProblem = block.type === "problem";
          yield [
            i + 1,
            block.type,
            block.key,
            moduleState(rng, block, modified),
            isProblem && rng.chance(0.8) ? rng.int(0, 4) / 4 : null,
            datetime(created, rng),
            datetime(modified, rng),
            isProblem ? 1 : null,
            "na",
            e.course.id,
            e.user.id,
          ];
        }
      },
    },
    {
      name: "completion_blockcompletion",
      columns: [
        "created",
        "modified",
        "id",
        "course_key",
        "block_key",
        "block_type",
        "completion",
        "user_id",
      ],
      ddl: `CREATE TABLE completion_blockcompletion (
  created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL,
  id bigint NOT NULL AUTO_INCREMENT,
  course_key varchar(255) NOT NULL,
  block_key varchar(255) NOT NULL,
  block_type varchar(64) NOT NULL,
  completion double NOT NULL,
  user_id int NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY completion_blockcompleti_course_key_block_key_use_b15bac54_uniq (course_key, block_key, user_id),
  KEY completion_blockcompletion_course_key_block_type_user_id_index (course_key, block_type, user_id),
  KEY completion_blockcompletion_user_id_course_key_modified_index (user_id, course_key, modified)
)`,
      *rows() {
        // Every other studentmodule row's (user, block), so the unique key holds.
        const count = Math.floor(studentmodule / 2);
        for (let j = 0; j < count; j++) {
          const i = 2 * j;
          const e = userByEnrollment(i);
          const block = e.course.blocks[Math.floor(i / E)]!;
          const created = between(rng, e.created, lastActivity(e));
          yield [
            datetime(created, rng),
            datetime(created + rng.int(0, 3) * DAY, rng),
            j + 1,
            e.course.id,
            block.key,
            block.type === "problem" ? "problem" : rng.pick(["html", "video", "problem"]),
            rng.chance(0.9) ? 1.0 : rng.pick([0.5, 0.25, 0.0]),
            e.user.id,
          ];
        }
      },
    },
    {
      name: "grades_persistentcoursegrade",
      columns: [
        "created",
        "modified",
        "id",
        "user_id",
        "course_id",
        "course_edited_timestamp",
        "course_version",
        "grading_policy_hash",
        "percent_grade",
        "letter_grade",
        "passed_timestamp",
      ],
      ddl: `CREATE TABLE grades_persistentcoursegrade (
  created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL,
  id bigint unsigned NOT NULL AUTO_INCREMENT,
  user_id int NOT NULL,
  course_id varchar(255) NOT NULL,
  course_edited_timestamp datetime(6) DEFAULT NULL,
  course_version varchar(255) NOT NULL,
  grading_policy_hash varchar(255) NOT NULL,
  percent_grade double NOT NULL,
  letter_grade varchar(255) NOT NULL,
  passed_timestamp datetime(6) DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY grades_persistentcoursegrade_course_id_user_id_d7b585c9_uniq (course_id, user_id),
  KEY grades_persistentcoursegrade_user_id_b2ebd3d9 (user_id),
  KEY grades_persistentcoursegrade_passed_timestamp_course_id_index (passed_timestamp, course_id),
  KEY grades_persistentcoursegrade_modified_course_id_index (modified, course_id)
)`,
      *rows() {
        let id = 0;
        for (const e of enrollments) {
          if (!rng.chance(0.6)) continue;
          const percent = Math.round(rng.next() * 100) / 100;
          const passed = percent >= 0.5;
          const modified = between(rng, e.created, END);
          yield [
            datetime(e.created, rng),
            datetime(modified, rng),
            ++id,
            e.user.id,
            e.course.id,
            datetime(e.course.start, rng),
            rng.hex(24),
            `${rng.hex(27)}=`,
            percent,
            passed ? "Pass" : "",
            passed ? datetime(modified, rng) : null,
          ];
        }
      },
    },
    {
      name: "certificates_generatedcertificate",
      columns: [
        "id",
        "course_id",
        "verify_uuid",
        "download_uuid",
        "download_url",
        "grade",
        "key",
        "distinction",
        "status",
        "mode",
        "name",
        "created_date",
        "modified_date",
        "error_reason",
        "user_id",
      ],
      ddl: `CREATE TABLE certificates_generatedcertificate (
  id int NOT NULL AUTO_INCREMENT,
  course_id varchar(255) NOT NULL,
  verify_uuid varchar(32) NOT NULL,
  download_uuid varchar(32) NOT NULL,
  download_url varchar(128) NOT NULL,
  grade varchar(5) NOT NULL,
  \`key\` varchar(32) NOT NULL,
  distinction tinyint(1) NOT NULL,
  status varchar(32) NOT NULL,
  mode varchar(32) NOT NULL,
  name varchar(255) NOT NULL,
  created_date datetime(6) NOT NULL,
  modified_date datetime(6) NOT NULL,
  error_reason varchar(512) NOT NULL,
  user_id int NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY certificates_generatedcertificate_user_id_course_id_uniq (user_id, course_id),
  KEY certificates_generatedcertificate_verify_uuid_idx (verify_uuid)
)`,
      *rows() {
        let id = 0;
        for (const e of enrollments) {
          if (!rng.chance(0.2)) continue;
          const created = between(rng, e.created, END);
          yield [
            ++id,
            e.course.id,
            rng.hex(32),
            "",
            "",
            rng.pick(["0.82", "0.5", "1.0", "0.67"]),
            "",
            0,
            rng.pick(["downloadable", "downloadable", "notpassing", "unavailable"]),
            rng.pick(["honor", "verified", "audit"]),
            e.user.name,
            datetime(created, rng),
            datetime(created, rng),
            "",
            e.user.id,
          ];
        }
      },
    },
    {
      name: "student_anonymoususerid",
      columns: ["id", "anonymous_user_id", "course_id", "user_id"],
      ddl: `CREATE TABLE student_anonymoususerid (
  id int NOT NULL AUTO_INCREMENT,
  anonymous_user_id varchar(32) NOT NULL,
  course_id varchar(255) NOT NULL,
  user_id int NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY anonymous_user_id (anonymous_user_id),
  KEY student_anonymoususerid_user_id_0fb2ad5c (user_id),
  KEY student_anonymoususerid_course_id_99cc6a18 (course_id)
)`,
      *rows() {
        for (const e of enrollments) yield [e.id, rng.hex(32), e.course.id, e.user.id];
      },
    },
    {
      name: "student_courseaccessrole",
      columns: ["id", "org", "course_id", "role", "user_id"],
      ddl: `CREATE TABLE student_courseaccessrole (
  id int NOT NULL AUTO_INCREMENT,
  org varchar(64) NOT NULL,
  course_id varchar(255) NOT NULL,
  role varchar(64) NOT NULL,
  user_id int NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY student_courseaccessrole_user_id_org_course_id_role_uniq (user_id, org, course_id, role),
  KEY student_courseaccessrole_org_6d2dbb7a (org),
  KEY student_courseaccessrole_course_id_60fb355e (course_id),
  KEY student_courseaccessrole_role_a5954a2f (role)
)`,
      *rows() {
        let id = 0;
        for (const c of courses) {
          yield [++id, c.org, c.id, "instructor", 1];
          yield [++id, c.org, c.id, "staff", 1 + ((id * 7) % users.length)];
        }
      },
    },
    {
      name: "student_manualenrollmentaudit",
      columns: [
        "id",
        "enrolled_email",
        "time_stamp",
        "state_transition",
        "reason",
        "enrolled_by_id",
        "enrollment_id",
        "role",
      ],
      ddl: `CREATE TABLE student_manualenrollmentaudit (
  id int NOT NULL AUTO_INCREMENT,
  enrolled_email varchar(255) NOT NULL,
  time_stamp datetime(6) DEFAULT NULL,
  state_transition varchar(255) NOT NULL,
  reason longtext,
  enrolled_by_id int DEFAULT NULL,
  enrollment_id int DEFAULT NULL,
  role varchar(64) DEFAULT NULL,
  PRIMARY KEY (id),
  KEY student_manualenrollmentaudit_enrolled_email_c5c1ee3d (enrolled_email)
)`,
      *rows() {
        let id = 0;
        for (const e of enrollments) {
          if (!rng.chance(0.03)) continue;
          yield [
            ++id,
            e.user.email,
            datetime(e.created, rng),
            "from unenrolled to enrolled",
            rng.pick([null, "", "Requested by the instructor", '"VIP" learner, enrolled by hand']),
            1,
            e.id,
            rng.pick(["Learner", null]),
          ];
        }
      },
    },
    {
      name: "student_courseenrollmentallowed",
      columns: ["id", "email", "course_id", "auto_enroll", "created", "user_id"],
      ddl: `CREATE TABLE student_courseenrollmentallowed (
  id int NOT NULL AUTO_INCREMENT,
  email varchar(255) NOT NULL,
  course_id varchar(255) NOT NULL,
  auto_enroll tinyint(1) NOT NULL,
  created datetime(6) DEFAULT NULL,
  user_id int DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY student_courseenrollmentallowed_email_course_id_uniq (email, course_id),
  KEY student_courseenrollmentallowed_email_969706a0 (email),
  KEY student_courseenrollmentallowed_course_id_67eff667 (course_id)
)`,
      *rows() {
        let id = 0;
        for (const c of courses) {
          for (let k = 0; k < 3; k++) {
            const registered = k === 0 ? users[(id * 13) % users.length]! : null;
            yield [
              ++id,
              registered?.email ?? `invitee${id}@example.org`,
              c.id,
              bool(rng, 0.5),
              datetime(c.start - rng.int(1, 20) * DAY, rng),
              registered?.id ?? null,
            ];
          }
        }
      },
    },
    {
      name: "site_configuration_siteconfiguration",
      columns: ["id", "site_id", "enabled", "site_values"],
      ddl: `CREATE TABLE site_configuration_siteconfiguration (
  id int NOT NULL AUTO_INCREMENT,
  site_id int NOT NULL,
  enabled tinyint(1) NOT NULL,
  site_values longtext NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY site_id (site_id)
)`,
      *rows() {
        yield [
          1,
          1,
          1,
          JSON.stringify({
            PLATFORM_NAME: 'Campus "Virtual"',
            course_org_filter: ["edX", "MITx"],
            LANGUAGE_CODE: "es-419",
            ENABLE_PANORAMA: true,
            contact_email: "help@example.com",
          }),
        ];
        yield [2, 2, 0, "{}"];
      },
    },
    ...submissionsTables(rng, enrollments, studentItems, submissions),
    ...cohortTables(rng, enrollments, courses, cohortIds),
    ...enterpriseTables(rng, users, enterprises),
  ];
}

function submissionsTables(
  rng: Random,
  enrollments: Enrollment[],
  studentItems: number,
  submissions: number,
): TableSpec[] {
  const itemOf = (i: number) => {
    const e = enrollments[i % enrollments.length]!;
    const ora = e.course.blocks.find((b) => b.type === "openassessment") ?? e.course.blocks[0]!;
    return { e, ora };
  };
  return [
    {
      name: "submissions_studentitem",
      columns: ["id", "student_id", "course_id", "item_id", "item_type"],
      ddl: `CREATE TABLE submissions_studentitem (
  id int NOT NULL AUTO_INCREMENT,
  student_id varchar(255) NOT NULL,
  course_id varchar(255) NOT NULL,
  item_id varchar(255) NOT NULL,
  item_type varchar(100) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY submissions_studentitem_course_id_student_id_item_id_uniq (course_id, student_id, item_id),
  KEY submissions_studentitem_student_id_4bc5d4a9 (student_id),
  KEY submissions_studentitem_course_id_5b0b3ee4 (course_id),
  KEY submissions_studentitem_item_id_6b6e1b0a (item_id)
)`,
      *rows() {
        for (let i = 0; i < studentItems; i++) {
          const { e, ora } = itemOf(i);
          yield [i + 1, rng.hex(32), e.course.id, ora.key, "openassessment"];
        }
      },
    },
    {
      name: "submissions_teamsubmission",
      columns: [
        "id",
        "created",
        "modified",
        "uuid",
        "attempt_number",
        "submitted_at",
        "course_id",
        "item_id",
        "team_id",
        "status",
        "submitted_by_id",
      ],
      ddl: `CREATE TABLE submissions_teamsubmission (
  id int NOT NULL AUTO_INCREMENT,
  created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL,
  uuid char(32) NOT NULL,
  attempt_number int unsigned NOT NULL,
  submitted_at datetime(6) NOT NULL,
  course_id varchar(255) NOT NULL,
  item_id varchar(255) NOT NULL,
  team_id varchar(255) NOT NULL,
  status varchar(1) NOT NULL,
  submitted_by_id int NOT NULL,
  PRIMARY KEY (id),
  KEY submissions_teamsubmission_uuid_idx (uuid),
  KEY submissions_teamsubmission_course_id_idx (course_id),
  KEY submissions_teamsubmission_item_id_idx (item_id),
  KEY submissions_teamsubmission_team_id_idx (team_id)
)`,
      *rows() {
        const count = Math.max(1, Math.floor(studentItems / 20));
        for (let i = 0; i < count; i++) {
          const { e, ora } = itemOf(i * 7);
          const at = between(rng, e.created, END);
          yield [
            i + 1,
            datetime(at, rng),
            datetime(at, rng),
            rng.hex(32),
            1,
            datetime(at, rng),
            e.course.id,
            ora.key,
            `team-${rng.hex(8)}`,
            rng.pick(["A", "A", "D"]),
            e.user.id,
          ];
        }
      },
    },
    {
      name: "submissions_submission",
      columns: [
        "id",
        "uuid",
        "attempt_number",
        "submitted_at",
        "created_at",
        "raw_answer",
        "student_item_id",
        "status",
        "team_submission_id",
      ],
      ddl: `CREATE TABLE submissions_submission (
  id int NOT NULL AUTO_INCREMENT,
  uuid char(32) NOT NULL,
  attempt_number int unsigned NOT NULL,
  submitted_at datetime(6) NOT NULL,
  created_at datetime(6) NOT NULL,
  raw_answer longtext NOT NULL,
  student_item_id int NOT NULL,
  status varchar(1) NOT NULL,
  team_submission_id int DEFAULT NULL,
  PRIMARY KEY (id),
  KEY submissions_submission_uuid_210428ab (uuid),
  KEY submissions_submission_submitted_at_9653124d (submitted_at),
  KEY submissions_submission_created_at_01c4bf22 (created_at),
  KEY submissions_submission_student_item_id_9d087470 (student_item_id)
)`,
      *rows() {
        for (let i = 0; i < submissions; i++) {
          const { e } = itemOf(i % studentItems);
          const at = between(rng, e.created, END);
          const text = rng.pick([
            "My essay, in three parts.",
            '"Quoted" opening line',
            "\\(x^2\\) is the answer",
            "Ensayo sobre la diversidad lingüística",
            "Line one\nLine two",
          ]);
          // ORA stores its parts as JSON; other items sometimes a bare JSON string.
          const raw = rng.chance(0.85) ? JSON.stringify({ parts: [{ text }] }) : JSON.stringify(text);
          yield [
            i + 1,
            rng.hex(32),
            i < studentItems ? 1 : 2,
            datetime(at, rng),
            datetime(at, rng),
            raw,
            (i % studentItems) + 1,
            rng.chance(0.95) ? "A" : "D",
            null,
          ];
        }
      },
    },
    {
      name: "submissions_score",
      columns: [
        "id",
        "points_earned",
        "points_possible",
        "created_at",
        "reset",
        "student_item_id",
        "submission_id",
      ],
      ddl: `CREATE TABLE submissions_score (
  id int NOT NULL AUTO_INCREMENT,
  points_earned int unsigned NOT NULL,
  points_possible int unsigned NOT NULL,
  created_at datetime(6) NOT NULL,
  reset tinyint(1) NOT NULL,
  student_item_id int NOT NULL,
  submission_id int DEFAULT NULL,
  PRIMARY KEY (id),
  KEY submissions_score_created_at_b65f0390 (created_at),
  KEY submissions_score_student_item_id_de4f5954 (student_item_id),
  KEY submissions_score_submission_id_ba095829 (submission_id)
)`,
      *rows() {
        for (let i = 0; i < submissions; i++) {
          const possible = rng.pick([1, 10, 100]);
          yield [
            i + 1,
            rng.int(0, possible),
            possible,
            datetime(between(rng, START, END), rng),
            0,
            (i % studentItems) + 1,
            rng.chance(0.98) ? i + 1 : null,
          ];
        }
      },
    },
    {
      name: "submissions_scoresummary",
      columns: ["id", "highest_id", "latest_id", "student_item_id"],
      ddl: `CREATE TABLE submissions_scoresummary (
  id int NOT NULL AUTO_INCREMENT,
  highest_id int NOT NULL,
  latest_id int NOT NULL,
  student_item_id int NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY student_item_id (student_item_id)
)`,
      *rows() {
        for (let i = 0; i < studentItems; i++) {
          const latest = i + studentItems < submissions ? i + studentItems + 1 : i + 1;
          yield [i + 1, rng.chance(0.5) ? i + 1 : latest, latest, i + 1];
        }
      },
    },
    {
      name: "submissions_scoreannotation",
      columns: ["id", "annotation_type", "creator", "reason", "score_id"],
      ddl: `CREATE TABLE submissions_scoreannotation (
  id int NOT NULL AUTO_INCREMENT,
  annotation_type varchar(255) NOT NULL,
  creator varchar(255) NOT NULL,
  reason longtext NOT NULL,
  score_id int NOT NULL,
  PRIMARY KEY (id),
  KEY submissions_scoreannotation_annotation_type_117a2607 (annotation_type),
  KEY submissions_scoreannotation_creator_5cc126cf (creator)
)`,
      *rows() {
        const count = Math.max(1, Math.floor(submissions / 50));
        for (let i = 0; i < count; i++) {
          yield [
            i + 1,
            "staff_defined",
            rng.hex(32),
            rng.pick(["Regraded after appeal", '"Late" submission accepted', "Nota corregida, ver foro"]),
            1 + ((i * 31) % submissions),
          ];
        }
      },
    },
  ];
}

function cohortTables(
  rng: Random,
  enrollments: Enrollment[],
  courses: Course[],
  cohorts: { id: number; course: Course; name: string }[],
): TableSpec[] {
  const memberships = enrollments.filter((_, i) => i % 3 === 0);
  const cohortOf = (e: Enrollment) => e.course.cohorts[e.id % e.course.cohorts.length]!;
  return [
    {
      name: "course_groups_courseusergroup",
      columns: ["id", "name", "course_id", "group_type"],
      ddl: `CREATE TABLE course_groups_courseusergroup (
  id int NOT NULL AUTO_INCREMENT,
  name varchar(255) NOT NULL,
  course_id varchar(255) NOT NULL,
  group_type varchar(20) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY course_groups_courseusergroup_name_course_id_uniq (name, course_id),
  KEY course_groups_courseusergroup_course_id_902aaa7d (course_id)
)`,
      *rows() {
        for (const c of cohorts) yield [c.id, c.name, c.course.id, "cohort"];
      },
    },
    {
      name: "course_groups_coursecohort",
      columns: ["id", "assignment_type", "course_user_group_id"],
      ddl: `CREATE TABLE course_groups_coursecohort (
  id int NOT NULL AUTO_INCREMENT,
  assignment_type varchar(20) NOT NULL,
  course_user_group_id int NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY course_user_group_id (course_user_group_id)
)`,
      *rows() {
        for (const c of cohorts) yield [c.id, c.name === "Default Group" ? "random" : "manual", c.id];
      },
    },
    {
      name: "course_groups_coursecohortssettings",
      columns: ["id", "is_cohorted", "course_id", "cohorted_discussions", "always_cohort_inline_discussions"],
      ddl: `CREATE TABLE course_groups_coursecohortssettings (
  id int NOT NULL AUTO_INCREMENT,
  is_cohorted tinyint(1) NOT NULL,
  course_id varchar(255) NOT NULL,
  cohorted_discussions longtext,
  always_cohort_inline_discussions tinyint(1) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY course_id (course_id)
)`,
      *rows() {
        let id = 0;
        for (const c of courses) yield [++id, bool(rng, 0.5), c.id, "[]", 0];
      },
    },
    {
      name: "course_groups_cohortmembership",
      columns: ["id", "course_id", "course_user_group_id", "user_id"],
      ddl: `CREATE TABLE course_groups_cohortmembership (
  id int NOT NULL AUTO_INCREMENT,
  course_id varchar(255) NOT NULL,
  course_user_group_id int NOT NULL,
  user_id int NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY course_groups_cohortmembership_user_id_course_id_uniq (user_id, course_id)
)`,
      *rows() {
        let id = 0;
        for (const e of memberships) yield [++id, e.course.id, cohortOf(e), e.user.id];
      },
    },
    {
      name: "course_groups_courseusergroup_users",
      columns: ["id", "courseusergroup_id", "user_id"],
      ddl: `CREATE TABLE course_groups_courseusergroup_users (
  id int NOT NULL AUTO_INCREMENT,
  courseusergroup_id int NOT NULL,
  user_id int NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY course_groups_courseuserg_courseusergroup_id_use_uniq (courseusergroup_id, user_id)
)`,
      *rows() {
        let id = 0;
        for (const e of memberships) yield [++id, cohortOf(e), e.user.id];
      },
    },
    {
      name: "course_groups_courseusergrouppartitiongroup",
      columns: ["id", "partition_id", "group_id", "created_at", "updated_at", "course_user_group_id"],
      ddl: `CREATE TABLE course_groups_courseusergrouppartitiongroup (
  id int NOT NULL AUTO_INCREMENT,
  partition_id int NOT NULL,
  group_id int NOT NULL,
  created_at datetime(6) NOT NULL,
  updated_at datetime(6) NOT NULL,
  course_user_group_id int NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY course_user_group_id (course_user_group_id)
)`,
      *rows() {
        for (const c of cohorts) {
          const at = datetime(c.course.start, rng);
          yield [c.id, 50, rng.int(1, 2), at, at, c.id];
        }
      },
    },
    {
      name: "course_groups_unregisteredlearnercohortassignments",
      columns: ["id", "email", "course_id", "course_user_group_id"],
      ddl: `CREATE TABLE course_groups_unregisteredlearnercohortassignments (
  id int NOT NULL AUTO_INCREMENT,
  email varchar(255) NOT NULL,
  course_id varchar(255) NOT NULL,
  course_user_group_id int NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY course_groups_unregister_course_user_group_id_em_uniq (course_user_group_id, email),
  KEY course_groups_unregisteredl_email_05d0e7a5 (email)
)`,
      *rows() {
        let id = 0;
        for (const c of cohorts) {
          if (c.name === "Default Group") continue;
          yield [++id, `future.learner${id}@example.org`, c.course.id, c.id];
        }
      },
    },
  ];
}

function enterpriseTables(
  rng: Random,
  users: User[],
  enterprises: { uuid: string; name: string; slug: string }[],
): TableSpec[] {
  return [
    {
      name: "enterprise_enterprisecustomer",
      columns: [
        "created",
        "modified",
        "uuid",
        "name",
        "active",
        "site_id",
        "enable_data_sharing_consent",
        "enforce_data_sharing_consent",
        "enable_audit_enrollment",
        "enable_audit_data_reporting",
        "replace_sensitive_sso_username",
        "hide_course_original_price",
        "slug",
        "country",
        "enable_autocohorting",
        "customer_type_id",
        "enable_portal_code_management_screen",
        "enable_learner_portal",
        "enable_portal_reporting_config_screen",
        "contact_email",
        "enable_portal_subscription_management_screen",
        "enable_slug_login",
        "enable_portal_saml_configuration_screen",
        "default_contract_discount",
        "enable_analytics_screen",
        "enable_integrated_customer_learner_portal_search",
        "default_language",
        "enable_portal_lms_configurations_screen",
        "sender_alias",
        "reply_to",
        "hide_labor_market_data",
        "enable_universal_link",
        "enable_browse_and_request",
      ],
      ddl: `CREATE TABLE enterprise_enterprisecustomer (
  created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL,
  uuid char(32) NOT NULL,
  name varchar(255) NOT NULL,
  active tinyint(1) NOT NULL,
  site_id int NOT NULL,
  enable_data_sharing_consent tinyint(1) NOT NULL,
  enforce_data_sharing_consent varchar(25) NOT NULL,
  enable_audit_enrollment tinyint(1) NOT NULL,
  enable_audit_data_reporting tinyint(1) NOT NULL,
  replace_sensitive_sso_username tinyint(1) NOT NULL,
  hide_course_original_price tinyint(1) NOT NULL,
  slug varchar(30) NOT NULL,
  country varchar(2) DEFAULT NULL,
  enable_autocohorting tinyint(1) NOT NULL,
  customer_type_id int NOT NULL,
  enable_portal_code_management_screen tinyint(1) NOT NULL,
  enable_learner_portal tinyint(1) NOT NULL,
  enable_portal_reporting_config_screen tinyint(1) NOT NULL,
  contact_email varchar(254) DEFAULT NULL,
  enable_portal_subscription_management_screen tinyint(1) NOT NULL,
  enable_slug_login tinyint(1) NOT NULL,
  enable_portal_saml_configuration_screen tinyint(1) NOT NULL,
  default_contract_discount decimal(8,5) DEFAULT NULL,
  enable_analytics_screen tinyint(1) NOT NULL,
  enable_integrated_customer_learner_portal_search tinyint(1) NOT NULL,
  default_language varchar(25) DEFAULT NULL,
  enable_portal_lms_configurations_screen tinyint(1) NOT NULL,
  sender_alias varchar(255) DEFAULT NULL,
  reply_to varchar(254) DEFAULT NULL,
  hide_labor_market_data tinyint(1) NOT NULL,
  enable_universal_link tinyint(1) NOT NULL,
  enable_browse_and_request tinyint(1) NOT NULL,
  PRIMARY KEY (uuid),
  UNIQUE KEY slug (slug)
)`,
      *rows() {
        for (const e of enterprises) {
          const at = datetime(START + 3 * DAY, rng);
          yield [
            at,
            at,
            e.uuid,
            e.name,
            1,
            1,
            1,
            "at_enrollment",
            0,
            0,
            0,
            0,
            e.slug,
            rng.pick(["US", "UY"]),
            0,
            1,
            0,
            1,
            1,
            `admin@${e.slug}.example.com`,
            0,
            0,
            0,
            rng.chance(0.5) ? null : "12.50000",
            1,
            1,
            rng.pick([null, "es"]),
            0,
            null,
            null,
            0,
            0,
            0,
          ];
        }
      },
    },
    {
      name: "enterprise_enterprisecustomeruser",
      columns: [
        "id",
        "created",
        "modified",
        "user_id",
        "enterprise_customer_id",
        "active",
        "linked",
        "invite_key_id",
        "should_inactivate_other_customers",
      ],
      ddl: `CREATE TABLE enterprise_enterprisecustomeruser (
  id int NOT NULL AUTO_INCREMENT,
  created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL,
  user_id int unsigned NOT NULL,
  enterprise_customer_id char(32) NOT NULL,
  active tinyint(1) NOT NULL,
  linked tinyint(1) NOT NULL,
  invite_key_id char(32) DEFAULT NULL,
  should_inactivate_other_customers tinyint(1) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY enterprise_enterprisecustomer_enterprise_customer_id_user_uniq (enterprise_customer_id, user_id)
)`,
      *rows() {
        let id = 0;
        for (const u of users) {
          if (u.id % 20 !== 0) continue;
          const at = datetime(u.joined, rng);
          yield [++id, at, at, u.id, enterprises[u.id % enterprises.length]!.uuid, 1, 1, null, 0];
        }
      },
    },
    {
      name: "enterprise_pendingenterprisecustomeruser",
      columns: ["id", "created", "modified", "user_email", "enterprise_customer_id"],
      ddl: `CREATE TABLE enterprise_pendingenterprisecustomeruser (
  id int NOT NULL AUTO_INCREMENT,
  created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL,
  user_email varchar(254) NOT NULL,
  enterprise_customer_id char(32) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY enterprise_pendingenterp_enterprise_customer_id__uniq (enterprise_customer_id, user_email)
)`,
      *rows() {
        for (let id = 1; id <= 3; id++) {
          const at = datetime(between(rng, START, END), rng);
          yield [id, at, at, `pending${id}@acme.example.com`, enterprises[id % enterprises.length]!.uuid];
        }
      },
    },
  ];
}

// ---- loading -----------------------------------------------------------------------------------

/** Statement size: well below MariaDB's and MySQL's default max_allowed_packet (16 and 64 MiB). */
const BATCH_BYTES = 2 * 1024 * 1024;
const BATCH_ROWS = 5000;
/** Statements in flight at once, each on its own connection. */
const PARALLEL = 3;

function approximateSize(row: Row): number {
  let n = 8;
  for (const v of row) n += typeof v === "string" ? v.length + 3 : 8;
  return n;
}

/**
 * Parallel multi-row INSERTs into one table can deadlock on InnoDB's insert-intention locks; the
 * server then rolls back one statement (it is its own transaction), which is simply sent again.
 */
async function insertRetryingDeadlocks(pool: mysql.Pool, sql: string, rows: Row[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query(sql, [rows]);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== "ER_LOCK_DEADLOCK" || attempt >= 10) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
}

async function load(pool: mysql.Pool, table: TableSpec): Promise<number> {
  const sql = `INSERT INTO \`${table.name}\` (${table.columns.map((c) => `\`${c}\``).join(", ")}) VALUES ?`;
  const inFlight = new Set<Promise<unknown>>();
  let batch: Row[] = [];
  let bytes = 0;
  let count = 0;
  const send = async () => {
    const rows = batch;
    batch = [];
    bytes = 0;
    const p = insertRetryingDeadlocks(pool, sql, rows).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= PARALLEL) await Promise.race(inFlight);
  };
  for (const row of table.rows()) {
    if (row.length !== table.columns.length) {
      throw new Error(`${table.name}: a row has ${row.length} values for ${table.columns.length} columns`);
    }
    batch.push(row);
    bytes += approximateSize(row);
    count++;
    if (batch.length >= BATCH_ROWS || bytes >= BATCH_BYTES) await send();
  }
  if (batch.length > 0) await send();
  await Promise.all(inFlight);
  return count;
}

/**
 * The CREATE TABLE without its secondary keys, and those keys: built once after the load (a
 * sorted build), they cost a fraction of what keeping them up to date row by row does.
 */
function deferKeys(ddl: string): { create: string; keys: string[] } {
  const lines = ddl.split("\n");
  const head = lines[0]!;
  const tail = lines[lines.length - 1]!;
  const definitions = lines.slice(1, -1).map((line) => line.trim().replace(/,$/, ""));
  const keys = definitions.filter((d) => /^(UNIQUE )?KEY /.test(d));
  const columns = definitions.filter((d) => !keys.includes(d));
  return { create: `${head}\n  ${columns.join(",\n  ")}\n${tail}`, keys };
}

export async function generateOpenedxData(options: GenerateOptions): Promise<GenerateResult> {
  const started = performance.now();
  const say = options.log ?? (() => {});
  for (const [flag, n] of Object.entries({
    users: options.users,
    courses: options.courses,
    enrollments: options.enrollments,
    studentmodule: options.studentmodule,
  })) {
    if (!Number.isInteger(n) || n < (flag === "enrollments" || flag === "studentmodule" ? 0 : 1)) {
      throw new Error(
        `--${flag}: expected a whole number${flag === "users" || flag === "courses" ? " ≥ 1" : ""}`,
      );
    }
  }
  if (!/^[A-Za-z0-9_]+$/.test(options.connection.database)) {
    throw new Error(`--database: "${options.connection.database}" is not a plain identifier ([A-Za-z0-9_]+)`);
  }
  const rng = new Random(options.seed);
  const courses = makeCourses(rng, options.courses);
  const users = makeUsers(rng, options.users);
  const enrollments = makeEnrollments(rng, users, courses, options.enrollments);
  const perEnrollment = enrollments.length === 0 ? 0 : Math.ceil(options.studentmodule / enrollments.length);
  for (const course of courses) addBlocks(rng, course, Math.max(40, perEnrollment + 1));
  const studentmodule = enrollments.length === 0 ? 0 : options.studentmodule;
  const tables = defineTables(rng, users, courses, enrollments, studentmodule);

  const { database, socket, host, port, user, password } = options.connection;
  const base = socket ? { socketPath: socket } : { host: host ?? "127.0.0.1", port: port ?? 3306 };
  const admin = await mysql.createConnection({ ...base, user, password: password ?? "", charset: "utf8mb4" });
  try {
    const [found] = await admin.query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", [
      database,
    ]);
    if ((found as unknown[]).length === 0) {
      await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    }
  } finally {
    await admin.end();
  }
  const pool = mysql.createPool({
    ...base,
    user,
    password: password ?? "",
    database,
    charset: "utf8mb4",
    connectionLimit: PARALLEL,
  });
  // The generator's own rows cannot break a key; skipping the checks makes loading faster. (Queries
  // on a connection run in order, so this runs before the connection's first INSERT.)
  pool.on("connection", (connection) => {
    connection.query("SET unique_checks = 0, foreign_key_checks = 0");
  });
  const counts: Record<string, number> = {};
  try {
    for (const table of tables) {
      const t0 = performance.now();
      const { create, keys } = deferKeys(table.ddl);
      await pool.query(`DROP TABLE IF EXISTS \`${table.name}\``);
      await pool.query(`${create} ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
      counts[table.name] = await load(pool, table);
      const t1 = performance.now();
      if (keys.length > 0)
        await pool.query(`ALTER TABLE \`${table.name}\` ${keys.map((k) => `ADD ${k}`).join(", ")}`);
      const seconds = (ms: number) => (ms / 1000).toFixed(1);
      say(
        `${table.name}: ${counts[table.name]} rows in ${seconds(t1 - t0)} s, keys in ${seconds(performance.now() - t1)} s`,
      );
    }
  } finally {
    await pool.end();
  }
  return { seed: options.seed, database, seconds: (performance.now() - started) / 1000, tables: counts };
}

// ---- command line ------------------------------------------------------------------------------

function wholeNumber(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) {
    console.error(`gen-openedx-data: --${flag}: expected a whole number, got "${text}"`);
    process.exit(2);
  }
  return Number(text);
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      users: { type: "string", default: "500" },
      courses: { type: "string", default: "8" },
      enrollments: { type: "string", default: "2000" },
      studentmodule: { type: "string", default: "20000" },
      seed: { type: "string", default: "1" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "3306" },
      user: { type: "string", default: "root" },
      password: { type: "string", default: process.env.MYSQL_PWD ?? "" },
      database: { type: "string", default: "edxapp" },
      socket: { type: "string", default: "" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: bun scripts/gen-openedx-data.ts [--users N] [--courses N] [--enrollments N] [--studentmodule N]\n" +
        "  [--seed N] [--host H] [--port P] [--user U] [--password P] [--database D] [--socket PATH]",
    );
    process.exit(0);
  }
  try {
    const result = await generateOpenedxData({
      users: wholeNumber("users", values.users),
      courses: wholeNumber("courses", values.courses),
      enrollments: wholeNumber("enrollments", values.enrollments),
      studentmodule: wholeNumber("studentmodule", values.studentmodule),
      seed: wholeNumber("seed", values.seed),
      connection: {
        host: values.host,
        port: wholeNumber("port", values.port),
        user: values.user,
        password: values.password,
        database: values.database,
        ...(values.socket ? { socket: values.socket } : {}),
      },
      log: (m) => console.error(`gen-openedx-data: ${m}`),
    });
    console.log(JSON.stringify(result, null, 2));
  } catch (error) {
    console.error(`gen-openedx-data: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
