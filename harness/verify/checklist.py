"""The seed's acceptance checklist (驗收標準), in its own words with English beside them."""

from __future__ import annotations

from dataclasses import dataclass

from harness.verify.model import Text, bi


@dataclass(frozen=True)
class Item:
    """One acceptance item: its number, group, title and what passing means."""

    id: str
    group: Text
    title: Text
    criterion: Text
    remote_safe: bool  # read-only and safe against a deployed stage


FUNCTIONAL = bi("Functional", "功能驗收")
PERFORMANCE = bi("Performance", "效能驗收")
SECURITY = bi("Security", "安全驗收")

ITEMS: tuple[Item, ...] = (
    Item("1", FUNCTIONAL, bi("Every API endpoint answers correctly", "所有 API 端點正常回應"),
         bi("Every route of contracts/openapi.yaml answers as the contract says through the gateway "
            "(schemathesis, positive and negative phases, fixed seed); /health is 200; /query/failure "
            "and /failed are 403 at the gateway.",
            "經由 API Gateway，contracts/openapi.yaml 的每個路由皆依契約回應（schemathesis 正向與負向測試，"
            "固定種子）；/health 回 200；/query/failure 與 /failed 在 Gateway 回 403。"), True),
    Item("2", FUNCTIONAL, bi("Query results are correct", "資料查詢結果正確"),
         bi("A generated data set written through command-records answers every query, all pages, "
            "exactly as an oracle computed from what was written.",
            "經由 command-records 寫入的產生資料，每個查詢（所有分頁）的結果與依寫入內容計算的預期完全相同。"),
         False),
    Item("3", FUNCTIONAL, bi("The new ap_id field syncs correctly", "新增 ap_id 欄位正確同步"),
         bi("ap_id inserted, changed and removed arrives on the read side; pre-V3 records answer null; "
            "sync latency reported.",
            "ap_id 的新增、修改、移除皆正確同步至讀取端；V3 之前的紀錄回傳 null；並報告同步延遲。"), False),
    Item("4", FUNCTIONAL, bi("Health checks pass", "健康檢查通過"),
         bi("/health through the gateway is 200 and every task is running and healthy behind the "
            "load balancer.",
            "經由 Gateway 的 /health 回 200，負載平衡器後的每個任務皆為 RUNNING 且健康。"), True),
    Item("5", PERFORMANCE, bi("API response time < 500 ms", "API 回應時間 < 500ms"),
         bi("A locust load run mixing the three queries: p99 < 500 ms on every route (p50/p90/p95/max "
            "shown).",
            "以 locust 混合三種查詢施加負載：每個路由的 p99 < 500 ms（並列出 p50/p90/p95/max）。"), True),
    Item("6", PERFORMANCE, bi("Service availability > 99.9%", "服務可用性 > 99.9%"),
         bi("During a load run one task is killed and a rolling deployment happens; success rate "
            "≥ 99.9 % over every request.",
            "負載期間終止一個任務並進行滾動部署；所有請求的成功率 ≥ 99.9 %。"), False),
    Item("7", PERFORMANCE, bi("Autoscaling works", "自動擴展正常運作"),
         bi("A load ramp makes the service scale out and back in per the Terraform policy.",
            "負載爬升時服務依 Terraform 政策擴展，負載下降後縮減。"), False),
    Item("8", SECURITY, bi("Reachable only from inside the VPC", "僅 VPC 內部可存取"),
         bi("(a) a source address outside the VPC range gets API Gateway's 403, inside is served; "
            "(b) infra/terraform: private API limited to the VPC endpoint, internal ALB, private "
            "subnets without public IPs, narrow security groups; (c) checkov: every failed check "
            "fixed or waived with a reason.",
            "(a) VPC 範圍外的來源位址得到 API Gateway 的 403，範圍內正常服務；(b) infra/terraform："
            "私有 API 僅限 VPC 端點、內部 ALB、私有子網不配公有 IP、安全群組只允許預期來源；"
            "(c) checkov：每個未通過的檢查皆已修正或附理由豁免。"), True),
    Item("9", SECURITY, bi("IAM permissions are minimal", "IAM 權限最小化"),
         bi("(a) IAM enforced on the endpoint with each component's own role; (b) actions used vs "
            "granted per role; (c) no wildcard action, IAM policy linter clean.",
            "(a) 端點啟用 IAM 強制檢查，各元件以自身角色呼叫；(b) 各角色已授權與實際使用的動作對照；"
            "(c) 無萬用字元動作，IAM 政策檢查工具無發現。"), False),
    Item("10", SECURITY, bi("Logging is complete", "日誌記錄完整"),
         bi("For a sample of ≥ 200 requests with known ids, each id is in the gateway access log, in "
            "/ecs/query-service and in the query Lambda's log group with START/END/REPORT; the stream "
            "processor logs one line per batch with counts.",
            "抽樣 ≥ 200 個已知 ID 的請求，每個 ID 皆出現在 Gateway 存取日誌、/ecs/query-service 與查詢 "
            "Lambda 的日誌群組（含 START/END/REPORT）；串流處理器每批次記錄一行含筆數。"), True),
)

BY_ID = {item.id: item for item in ITEMS}
