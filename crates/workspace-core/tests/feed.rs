//! The live change feed (SPEC §16): subscriptions resume exactly, refuse a resume from before
//! retention, keep users apart, catch up after lagging, and receive changes committed through
//! another `Workspaces` on its own connections (another process or replica: the PostgreSQL
//! listener, the SQLite counter check). Every test runs on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use workspace_core::entity::workspace_event;
use workspace_core::gc::GcOptions;
use workspace_core::{
    Db, Event, EventKind, FeedStart, NewFile, Settings, Subscription, UserId, WorkspaceError, WorkspaceManager,
    Workspaces,
};
use workspace_testkit::{TestEnv, db_tests};

db_tests!(
    resume_after_an_id_is_exact,
    from_now_starts_with_the_next_change,
    resume_from_before_retention_is_refused_with_the_oldest_id,
    two_users_writing_at_once_see_only_their_own_events,
    a_lagging_subscriber_catches_up_from_the_table,
    changes_through_another_process_arrive_within_a_second,
    closing_the_feed_ends_subscriptions,
);

async fn manager(workspaces: &Workspaces, user: &str) -> WorkspaceManager {
    workspaces.manager(&UserId::new(user).unwrap(), None).await.unwrap()
}

async fn write(m: &WorkspaceManager, path: &str, body: &str) {
    m.write_bytes(NewFile::new(m.resolve_path(path).unwrap()).with_overwrite(true), body.to_owned()).await.unwrap();
}

/// The next event, failing the test after `within`.
async fn next(sub: &mut Subscription, within: Duration) -> Event {
    tokio::time::timeout(within, sub.next()).await.expect("an event in time").unwrap().expect("the feed is open")
}

async fn subscribe(workspaces: &Workspaces, m: &WorkspaceManager, start: FeedStart) -> Subscription {
    workspaces.subscribe(m.workspace_id(), start).await.unwrap()
}

async fn resume_after_an_id_is_exact(env: TestEnv) {
    let ws = env.workspaces();
    let m = manager(&ws, "alice").await;
    for i in 0..30 {
        write(&m, &format!("/f{i}.txt"), "x").await;
    }
    let mut sub = subscribe(&ws, &m, FeedStart::After(10)).await;
    // Changes while the subscriber reads its backlog: the table hands over to the broadcast with
    // no gap and no duplicate.
    let writer = {
        let m = m.clone();
        tokio::spawn(async move {
            for i in 30..60 {
                write(&m, &format!("/f{i}.txt"), "y").await;
            }
        })
    };
    let mut ids = Vec::new();
    while ids.len() < 50 {
        ids.push(next(&mut sub, Duration::from_secs(10)).await.id);
    }
    writer.await.unwrap();
    assert_eq!(ids, (11..=60).collect::<Vec<_>>());
    assert_eq!(sub.cursor(), 60);
    // Nothing more is pending.
    assert!(tokio::time::timeout(Duration::from_millis(300), sub.next()).await.is_err());
    // A second subscriber resuming after the last id sees only what follows.
    let mut again = subscribe(&ws, &m, FeedStart::After(60)).await;
    write(&m, "/late.txt", "z").await;
    let late = next(&mut again, Duration::from_secs(5)).await;
    assert_eq!((late.id, late.kind, late.path.as_str()), (61, EventKind::Created, "/late.txt"));
    assert_eq!(next(&mut sub, Duration::from_secs(5)).await.id, 61);
    // From 0: everything retained.
    let mut all = subscribe(&ws, &m, FeedStart::After(0)).await;
    assert_eq!(next(&mut all, Duration::from_secs(5)).await.id, 1);
}

async fn from_now_starts_with_the_next_change(env: TestEnv) {
    let ws = env.workspaces();
    let m = manager(&ws, "alice").await;
    write(&m, "/before.txt", "1").await;
    let mut sub = subscribe(&ws, &m, FeedStart::Now).await;
    assert_eq!(sub.cursor(), 1);
    write(&m, "/before.txt", "2").await;
    let event = next(&mut sub, Duration::from_secs(5)).await;
    assert_eq!((event.id, event.kind), (2, EventKind::Overwritten));
    // A subscriber of an empty workspace starts at 0.
    let empty = manager(&ws, "nobody").await;
    assert_eq!(subscribe(&ws, &empty, FeedStart::Now).await.cursor(), 0);
}

async fn resume_from_before_retention_is_refused_with_the_oldest_id(env: TestEnv) {
    let ws = env.workspaces();
    let m = manager(&ws, "alice").await;
    for i in 0..5 {
        write(&m, &format!("/r{i}.txt"), "x").await;
    }
    // Retention removed events 1..=3 (as gc does, oldest first).
    workspace_event::Entity::delete_many()
        .filter(workspace_event::Column::WorkspaceId.eq(m.workspace_id().as_uuid()))
        .filter(workspace_event::Column::Id.lte(3))
        .exec(env.db.conn())
        .await
        .unwrap();
    for after in [1, 2] {
        match ws.subscribe(m.workspace_id(), FeedStart::After(after)).await {
            Err(WorkspaceError::EventsExpired { after: a, oldest: 4 }) => assert_eq!(a, after),
            other => panic!("after {after}: expected EventsExpired, got {other:?}"),
        }
        assert!(matches!(m.events(after, 10).await, Err(WorkspaceError::EventsExpired { oldest: 4, .. })));
    }
    // Right before the oldest, from the start, and from the latest are fine.
    let mut sub = subscribe(&ws, &m, FeedStart::After(3)).await;
    assert_eq!(next(&mut sub, Duration::from_secs(5)).await.id, 4);
    let mut sub = subscribe(&ws, &m, FeedStart::After(0)).await;
    assert_eq!(next(&mut sub, Duration::from_secs(5)).await.id, 4);
    assert_eq!(m.events(0, 10).await.unwrap().iter().map(|e| e.id).collect::<Vec<_>>(), [4, 5]);
    subscribe(&ws, &m, FeedStart::After(5)).await;
    // Beyond the latest id: not an id this workspace handed out.
    assert!(matches!(ws.subscribe(m.workspace_id(), FeedStart::After(6)).await, Err(WorkspaceError::InvalidInput(_))));
    assert!(matches!(m.events(99, 10).await, Err(WorkspaceError::InvalidInput(_))));

    // gc past retention removes every event: the oldest "held" is then the next id.
    let report = ws.gc(GcOptions { event_retention: Duration::ZERO, ..GcOptions::default() }).await.unwrap();
    assert_eq!(report.events_deleted, 2);
    assert!(matches!(
        ws.subscribe(m.workspace_id(), FeedStart::After(4)).await,
        Err(WorkspaceError::EventsExpired { after: 4, oldest: 6 })
    ));
    let mut sub = subscribe(&ws, &m, FeedStart::After(5)).await;
    write(&m, "/after-gc.txt", "x").await;
    assert_eq!(next(&mut sub, Duration::from_secs(5)).await.id, 6);
}

async fn two_users_writing_at_once_see_only_their_own_events(env: TestEnv) {
    let ws = env.workspaces();
    let (alice, bob) = (manager(&ws, "alice").await, manager(&ws, "bob").await);
    let mut subs = [subscribe(&ws, &alice, FeedStart::Now).await, subscribe(&ws, &bob, FeedStart::Now).await];
    let writers: Vec<_> = [(alice.clone(), "alice"), (bob.clone(), "bob")]
        .into_iter()
        .flat_map(|(m, name)| {
            (0..2).map(move |w| {
                let m = m.clone();
                tokio::spawn(async move {
                    for i in 0..15 {
                        write(&m, &format!("/{name}/{w}-{i}.txt"), name).await;
                    }
                })
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    for (sub, name) in subs.iter_mut().zip(["alice", "bob"]) {
        let mut ids = Vec::new();
        for _ in 0..30 {
            let event = next(sub, Duration::from_secs(5)).await;
            assert!(event.path.starts_with(&format!("/{name}/")), "{name} got {event:?}");
            ids.push(event.id);
        }
        assert_eq!(ids, (1..=30).collect::<Vec<_>>(), "{name}");
        assert!(tokio::time::timeout(Duration::from_millis(300), sub.next()).await.is_err(), "{name}: nothing else");
    }
}

async fn a_lagging_subscriber_catches_up_from_the_table(env: TestEnv) {
    let ws = env.workspaces();
    let m = manager(&ws, "alice").await;
    let mut slow = subscribe(&ws, &m, FeedStart::Now).await;
    let mut fast = subscribe(&ws, &m, FeedStart::Now).await;
    // More changes than the broadcast holds, while `slow` reads nothing.
    const CHANGES: u64 = 1200;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let m = m.clone();
            tokio::spawn(async move {
                for i in 0..CHANGES / 8 {
                    write(&m, &format!("/lag/{w}-{i}.txt"), "x").await;
                }
            })
        })
        .collect();
    let mut fast_ids = Vec::new();
    while fast_ids.len() < CHANGES as usize {
        fast_ids.push(next(&mut fast, Duration::from_secs(30)).await.id);
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let mut slow_ids = Vec::new();
    while slow_ids.len() < CHANGES as usize {
        slow_ids.push(next(&mut slow, Duration::from_secs(10)).await.id);
    }
    let expected: Vec<u64> = (1..=CHANGES).collect();
    assert_eq!(fast_ids, expected);
    assert_eq!(slow_ids, expected);
}

async fn changes_through_another_process_arrive_within_a_second(env: TestEnv) {
    // A second `Workspaces` on connections of its own: what another process or replica is.
    let other_db = Db::connect(&env.database_url()).await.unwrap();
    let other = Workspaces::new(other_db, env.storage.clone(), Settings::default()).unwrap();
    let ws = env.workspaces();
    let here = manager(&ws, "alice").await;
    let there = manager(&other, "alice").await;
    let mut sub = subscribe(&ws, &here, FeedStart::Now).await;
    let mut worst = Duration::ZERO;
    for i in 1..=10u64 {
        let started = Instant::now();
        write(&there, &format!("/remote{i}.txt"), "x").await;
        let event = next(&mut sub, Duration::from_secs(1)).await;
        worst = worst.max(started.elapsed());
        assert_eq!((event.id, event.path), (i, format!("/remote{i}.txt")));
    }
    eprintln!("{:?}: worst latency from another process: {worst:?}", env.kind);
    // Both processes writing at once: one ordered feed.
    let (a, b) = (here.clone(), there.clone());
    let writers = [
        tokio::spawn(async move {
            for i in 0..20 {
                write(&a, &format!("/mix/a{i}.txt"), "a").await;
            }
        }),
        tokio::spawn(async move {
            for i in 0..20 {
                write(&b, &format!("/mix/b{i}.txt"), "b").await;
            }
        }),
    ];
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(next(&mut sub, Duration::from_secs(5)).await.id);
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(ids, (11..=50).collect::<Vec<_>>());
}

async fn closing_the_feed_ends_subscriptions(env: TestEnv) {
    let ws = env.workspaces();
    let m = manager(&ws, "alice").await;
    let mut sub = subscribe(&ws, &m, FeedStart::Now).await;
    let waiting = tokio::spawn(async move { sub.next().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    ws.close_feed();
    assert!(tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap().is_none());
    assert!(matches!(ws.subscribe(m.workspace_id(), FeedStart::Now).await, Err(WorkspaceError::Unavailable(_))));
    // Writes go on.
    write(&m, "/after-close.txt", "x").await;
}
