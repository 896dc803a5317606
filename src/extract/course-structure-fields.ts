// The columns of `course_structures` (DESIGN §10) and the MySQL table of its course index, apart
// from the extraction code so that the catalog and others can name them without loading the
// MongoDB driver (log-ship imports the catalog).
export const COURSE_STRUCTURE_FIELDS = [
  "module_location",
  "course_id",
  "organization",
  "course_code",
  "course_edition",
  "parent",
  "block_type",
  "block_id",
  "display_name",
  "course_name",
  "chapter",
  "sequential",
  "vertical",
  "library",
  "component",
  "weight",
] as const;

/** Where Open edX Maple and later keep the course index (which structure is published). */
export const COURSE_INDEX_TABLE = "split_modulestore_django_splitmodulestorecourseindex";

/** Why the course index table can be missing, and the way out: run and doctor say the same. */
export const COURSE_INDEX_IN_MONGODB =
  "so this Open edX keeps its course index in MongoDB (releases before Maple)";
export const USE_MONGODB_COURSE_INDEX =
  "set [mongodb] use_split_mongo = false (env PANORAMA_USE_SPLIT_MONGO=false)";
