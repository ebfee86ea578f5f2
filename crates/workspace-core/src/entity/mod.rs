//! sea-orm entities of the schema (SPEC §3, §13, §16). The schema itself (the partial unique
//! index on live paths, the content foreign key, the other indexes) is created by the
//! `workspace-migrations` crate.

pub mod user_workspace;
pub mod user_workspace_file;
pub mod workspace_content;
pub mod workspace_event;
