use crate::helpers::*;
use jifen_members::Application;
use jifen_proto::common::v1 as common;
use jifen_proto::members::v1 as pb;
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_is_idempotent_even_for_concurrent_starts() {
    init_telemetry();
    let database = jifen_testkit::fresh_database("members").await.unwrap();
    let bus = jifen_eventbus::BusConfig::new(jifen_testkit::amqp_url())
        .with_prefix(&jifen_testkit::unique_prefix("boot"));
    let keys = Keys::generate();
    // Two instances starting at once, then a third later.
    let (a, b) = tokio::join!(
        Application::build(settings(&database, &bus, &keys)),
        Application::build(settings(&database, &bus, &keys))
    );
    let (a, _b) = (a.unwrap(), b.unwrap());
    let c = Application::build(settings(&database, &bus, &keys))
        .await
        .unwrap();
    let db = c.db().clone();
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM organizations WHERE parent_id IS NULL",
            vec![]
        )
        .await,
        1
    );
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM organizations", vec![]).await,
        1
    );
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM accounts WHERE username = 'admin'",
            vec![]
        )
        .await,
        1
    );
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM role_grants", vec![]).await,
        1
    );
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM outbox WHERE routing_key = 'members.organization.created.v1'",
            vec![]
        )
        .await,
        1
    );
    let root_id = query_one_uuid(&db, "SELECT id FROM organizations WHERE parent_id IS NULL").await;

    let cancel = tokio_util::sync::CancellationToken::new();
    let addr = a.grpc_addr();
    let task = tokio::spawn(a.run_until_stopped(cancel.clone()));
    let mut anonymous = connect(addr, None).await;
    let p = anonymous
        .authenticate(pb::AuthenticateRequest {
            username: "admin".into(),
            password: "jifen-admin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.username, "admin");
    assert_eq!(p.member_id, None);
    assert_eq!(p.roles.len(), 1);
    assert_eq!(p.roles[0].role, common::Role::Admin as i32);
    assert_eq!(p.roles[0].org_id, root_id.to_string());
    assert_eq!(p.roles[0].org_path, format!("/{root_id}/"));

    // Wrong password and unknown user fail alike.
    let wrong = anonymous
        .authenticate(pb::AuthenticateRequest {
            username: "admin".into(),
            password: "not-the-password".into(),
        })
        .await
        .unwrap_err();
    let unknown = anonymous
        .authenticate(pb::AuthenticateRequest {
            username: "nobody".into(),
            password: "jifen-admin".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(unknown.code(), Code::Unauthenticated);
    assert_eq!(wrong.message(), unknown.message());
    assert_eq!(details(&wrong).0, details(&unknown).0);

    // The root as the admin sees it; the ops endpoints answer.
    let mut admin = connect(addr, Some(&keys.token_for(&p))).await;
    let root = admin
        .get_organization(pb::GetOrganizationRequest {
            id: root_id.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(root.name, "市直机关工委");
    assert_eq!(root.kind, common::OrgKind::Committee as i32);
    assert_eq!(root.parent_id, "");
    assert_eq!(root.version, 1);
    cancel.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ops_endpoints_answer() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let mut stream = tokio::net::TcpStream::connect(app.ops_addr).await.unwrap();
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
    }
    app.stop().await;
}
