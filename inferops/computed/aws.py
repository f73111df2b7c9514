"""Computed outputs the AWS mocks return: only fields the component code reads.

Owned by the AWS component."""

from __future__ import annotations

from typing import Any

from inferops.computed import ACCOUNT, short


def computed(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    region = inputs.get("region") or "us-east-1"
    phys = inputs.get("name") or f"{name}-{short(name)}"
    service = typ.split(":")[1].split("/")[0]
    out: dict[str, Any] = {"arn": f"arn:aws:{service}:{region}:{ACCOUNT}:{phys}"}
    if "name" not in inputs and typ not in ("aws:lambda/alias:Alias",):
        out["name"] = phys
    if typ == "aws:iam/role:Role":
        out["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{phys}"
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        out["arn"] = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{phys}"
    elif typ == "aws:lambda/function:Function":
        arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{phys}"
        version = "1" if inputs.get("publish") else "$LATEST"
        out.update(
            arn=arn,
            version=version,
            qualifiedArn=f"{arn}:{version}",
            invokeArn=f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations",
        )
    elif typ == "aws:lambda/alias:Alias":
        fn = str(inputs.get("functionName", name))
        out["arn"] = f"{fn}:{inputs.get('name', name)}" if fn.startswith("arn:") else out["arn"]
        out["invokeArn"] = f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{out['arn']}/invocations"
    elif typ == "aws:lambda/functionUrl:FunctionUrl":
        out["functionUrl"] = f"https://{short(name)}abcdefghijklmnopqrstu.lambda-url.{region}.on.aws/"
        out["urlId"] = short(name)
    elif typ == "aws:s3/bucket:Bucket":
        phys = str(inputs.get("bucket") or phys)
        out.update(arn=f"arn:aws:s3:::{phys}", bucket=phys, id=phys)
    elif typ == "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream":
        out["arn"] = f"arn:aws:firehose:{region}:{ACCOUNT}:deliverystream/{phys}"
    elif typ == "aws:budgets/budget:Budget":
        out["arn"] = f"arn:aws:budgets::{ACCOUNT}:budget/{phys}"
        out["id"] = f"{ACCOUNT}:{phys}"  # the provider's id is accountId:budgetName
    return out
