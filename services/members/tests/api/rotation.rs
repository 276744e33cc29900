//! Rotating the personal-data key: a service given a new key and the previous one reads what
//! the old key wrote and still refuses a registered ID card; `rekey-pii` rewrites every value
//! under the new key, after which the service runs with the new key alone.

use crate::helpers::*;
use jifen_members::{Application, Settings};
use jifen_proto::members::v1 as pb;
use secrecy::SecretSlice;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// A second instance of the service on `app`'s database, with its own keys; stops on drop.
struct Instance {
    addr: SocketAddr,
    cancel: CancellationToken,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn with_keys(app: &TestApp, current: [u8; 32], previous: &[[u8; 32]]) -> Settings {
    let mut settings = settings(&app.database, &app.bus, &app.keys);
    settings.pii_key = SecretSlice::from(current.to_vec());
    settings.pii_previous_keys = previous
        .iter()
        .map(|k| SecretSlice::from(k.to_vec()))
        .collect();
    settings
}

async fn start(settings: Settings) -> Instance {
    let instance = Application::build(settings).await.unwrap();
    let addr = instance.grpc_addr();
    let cancel = CancellationToken::new();
    tokio::spawn(instance.run_until_stopped(cancel.clone()));
    Instance { addr, cancel }
}

/// How many stored phones and ID cards are not under `key`.
async fn not_under(app: &TestApp, key: [u8; 32]) -> i64 {
    let prefix = jifen_members::crypto::Pii::from_master_key(&key)
        .unwrap()
        .current_prefix();
    query_i64(
        &app.db,
        "SELECT (SELECT count(*) FROM members WHERE phone_cipher IS NOT NULL AND substring(phone_cipher FROM 1 FOR 5) <> $1) \
              + (SELECT count(*) FROM members WHERE id_card_cipher IS NOT NULL AND substring(id_card_cipher FROM 1 FOR 5) <> $1)",
        vec![prefix.into()],
    )
    .await
}

/// What member `m` reads of themself from the instance at `addr`.
async fn own_view(
    app: &TestApp,
    addr: SocketAddr,
    m: &pb::Member,
) -> Result<pb::Member, tonic::Status> {
    connect(addr, Some(&app.keys.member_token(m)))
        .await
        .get_member(pb::GetMemberRequest { id: m.id.clone() })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread")]
async fn personal_data_survives_a_key_rotation_and_the_old_key_can_then_be_dropped() {
    let app = spawn_app().await;
    let old = app.keys.pii_key;
    let new: [u8; 32] = rand::random();
    let (_, branch) = committee_with_branch(&app, "轮换").await;
    let mut admin = app.root_admin().await;
    let card = id_card(301);
    let both = admin
        .create_member(pb::CreateMemberRequest {
            phone: Some("13812345678".into()),
            id_card: Some(card.clone()),
            ..member_request(&branch, "两项")
        })
        .await
        .unwrap()
        .into_inner();
    let phone_only = admin
        .create_member(pb::CreateMemberRequest {
            phone: Some("13900001111".into()),
            ..member_request(&branch, "仅电话")
        })
        .await
        .unwrap()
        .into_inner();
    let nothing = create_member(&mut admin, &branch, "无个人信息").await;
    assert_eq!(
        not_under(&app, new).await,
        3,
        "two phones and one ID card under the old key"
    );

    // During the rotation: the new key writes, the old one still reads and still counts.
    let rotating = start(with_keys(&app, new, &[old])).await;
    let seen = own_view(&app, rotating.addr, &both).await.unwrap();
    assert_eq!(
        (seen.phone.as_deref(), seen.id_card.as_deref()),
        (Some("13812345678"), Some(card.as_str()))
    );
    let mut admin_rotating = connect(
        rotating.addr,
        Some(
            &app.keys
                .role_token(jifen_platform::auth::RoleName::Admin, &app.root),
        ),
    )
    .await;
    let refused = admin_rotating
        .create_member(pb::CreateMemberRequest {
            id_card: Some(card.clone()),
            ..member_request(&branch, "重复证件")
        })
        .await
        .unwrap_err();
    assert_eq!(details(&refused).0.as_deref(), Some("id_card_taken"));
    let imported = admin_rotating
        .import_members(pb::ImportMembersRequest {
            csv: format!(
                "name,gender,category,joined_on,phone,id_card,org_id\n导入重复,male,full,2001-07-01,,{card},{}\n",
                branch.id
            )
            .into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.created, 0);
    assert_eq!(
        imported
            .errors
            .iter()
            .map(|e| (e.row, e.field.as_str()))
            .collect::<Vec<_>>(),
        vec![(2, "id_card")]
    );
    let outbox_before = outbox_for(&app.db, &both.id).await.len();

    // The rewrite, one member per transaction; a second run finds nothing.
    let summary = jifen_members::rekey_pii(&with_keys(&app, new, &[old]), 1)
        .await
        .unwrap();
    assert_eq!((summary.rewritten, summary.remaining), (2, 0));
    assert_eq!(not_under(&app, new).await, 0);
    let again = jifen_members::rekey_pii(&with_keys(&app, new, &[old]), 1)
        .await
        .unwrap();
    assert_eq!((again.rewritten, again.remaining), (0, 0));
    assert_eq!(
        query_i64(
            &app.db,
            "SELECT count(*) FROM audit_log WHERE action = 'pii.rekey'",
            vec![]
        )
        .await,
        2
    );
    drop(rotating);

    // The new key alone: everything reads, nothing of the members changed, the card still counts.
    let after = start(with_keys(&app, new, &[])).await;
    let seen = own_view(&app, after.addr, &both).await.unwrap();
    assert_eq!(
        (seen.phone.as_deref(), seen.id_card.as_deref(), seen.version),
        (Some("13812345678"), Some(card.as_str()), both.version)
    );
    let seen = own_view(&app, after.addr, &phone_only).await.unwrap();
    assert_eq!(
        (seen.phone.as_deref(), seen.version),
        (Some("13900001111"), phone_only.version)
    );
    assert_eq!(
        own_view(&app, after.addr, &nothing).await.unwrap().phone,
        None
    );
    assert_eq!(
        outbox_for(&app.db, &both.id).await.len(),
        outbox_before,
        "no event: nothing changed"
    );
    let refused = connect(
        after.addr,
        Some(
            &app.keys
                .role_token(jifen_platform::auth::RoleName::Admin, &app.root),
        ),
    )
    .await
    .create_member(pb::CreateMemberRequest {
        id_card: Some(card.clone()),
        ..member_request(&branch, "重复证件")
    })
    .await
    .unwrap_err();
    assert_eq!(details(&refused).0.as_deref(), Some("id_card_taken"));

    // The old key alone no longer reads anything.
    let stale = own_view(&app, app.grpc_addr, &both).await.unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Internal);
}
