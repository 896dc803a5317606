// The columns of `course_structures` (DESIGN §10), apart from the extraction code so that the
// catalog can name them without loading the MongoDB driver (log-ship imports the catalog).
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

export type CourseStructureField = (typeof COURSE_STRUCTURE_FIELDS)[number];
