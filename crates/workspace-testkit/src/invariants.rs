//! The store's invariants, checked from the outside (the database rows and the storage listing):
//! what every suite asserts after its workload, so "nothing lost, nothing orphaned" means one
//! thing everywhere.

use std::collections::{HashMap, HashSet};

use sea_orm::EntityTrait;
use workspace_core::entity::{user_workspace, user_workspace_file as file, workspace_content as content};
use workspace_core::{BlobKey, ContentId, Storage, WorkspaceId};

use crate::TestEnv;

/// What the invariant check found, for further assertions.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every file row.
    pub files: Vec<file::Model>,
    /// Every content row.
    pub contents: Vec<content::Model>,
    /// Keys of every blob in storage under `workspaces/`.
    pub blobs: HashSet<String>,
}

impl Snapshot {
    /// Current rows outside the trash.
    pub fn current(&self) -> impl Iterator<Item = &file::Model> {
        self.files.iter().filter(|f| f.is_current && !f.is_deleted)
    }
}

impl TestEnv {
    /// Asserts every invariant of the data model and returns what it saw:
    /// - one current row per path (outside the trash);
    /// - every file row refers to content of its own workspace, and every content row is
    ///   referred to by at least one file row (nothing unreferenced stays);
    /// - every blob content has its blob in storage, and every blob in storage belongs to a
    ///   content row (no orphan);
    /// - each workspace's durable counters equal the sums of its rows;
    /// - each version chain has exactly one current row.
    pub async fn assert_consistent(&self) -> Snapshot {
        self.assert_consistent_with(&self.storage).await
    }

    /// [`assert_consistent`](Self::assert_consistent) against another view of the storage.
    pub async fn assert_consistent_with(&self, storage: &Storage) -> Snapshot {
        let conn = self.db.conn();
        let files = file::Entity::find().all(conn).await.unwrap();
        let contents = content::Entity::find().all(conn).await.unwrap();
        let workspaces = user_workspace::Entity::find().all(conn).await.unwrap();
        let blobs: HashSet<String> =
            storage.list_all("workspaces/").await.unwrap().into_iter().map(|m| m.key.to_string()).collect();

        let mut paths = HashSet::new();
        for row in files.iter().filter(|f| f.is_current && !f.is_deleted) {
            assert!(paths.insert((row.workspace_id, row.path.clone())), "two current files at {}", row.path);
        }

        let content_of: HashMap<_, _> = contents.iter().map(|c| (c.id, c)).collect();
        let mut referenced = HashSet::new();
        for row in &files {
            let c = content_of.get(&row.content_id).unwrap_or_else(|| panic!("{} refers to missing content", row.path));
            assert_eq!(c.workspace_id, row.workspace_id, "{} refers to another workspace's content", row.path);
            assert_eq!((c.checksum.as_str(), c.size_bytes), (row.checksum.as_str(), row.size_bytes), "{}", row.path);
            referenced.insert(row.content_id);
        }
        for c in &contents {
            assert!(referenced.contains(&c.id), "content {} is referred to by no file", c.id);
        }

        let expected_blobs: HashSet<String> = contents
            .iter()
            .filter(|c| c.inline_data.is_none())
            .map(|c| {
                BlobKey::for_content(WorkspaceId::from_uuid(c.workspace_id), ContentId::from_uuid(c.id)).to_string()
            })
            .collect();
        let missing: Vec<_> = expected_blobs.difference(&blobs).collect();
        assert!(missing.is_empty(), "content without its blob: {missing:?}");
        let orphans: Vec<_> = blobs.difference(&expected_blobs).collect();
        assert!(orphans.is_empty(), "blobs no content refers to: {orphans:?}");

        for ws in &workspaces {
            let rows: Vec<_> = files.iter().filter(|f| f.workspace_id == ws.id).collect();
            let live: i64 = rows.iter().filter(|f| f.is_current && !f.is_deleted).map(|f| f.size_bytes).sum();
            let history: i64 = rows.iter().filter(|f| !f.is_current || f.is_deleted).map(|f| f.size_bytes).sum();
            let count = rows.iter().filter(|f| f.is_current && !f.is_deleted).count() as i64;
            assert_eq!(
                (ws.live_bytes, ws.history_bytes, ws.file_count),
                (live, history, count),
                "counters of workspace {} (live, history, files) match its rows",
                ws.user_id
            );
        }

        let mut chains: HashMap<_, (usize, usize)> = HashMap::new();
        for row in &files {
            let entry = chains.entry(row.chain_id).or_default();
            entry.0 += 1;
            entry.1 += usize::from(row.is_current);
        }
        for (chain, (_, current)) in chains {
            assert_eq!(current, 1, "chain {chain} has {current} current rows");
        }
        Snapshot { files, contents, blobs }
    }
}
