import { describe, expect, test } from "bun:test";
import { AwsV4Signer } from "aws4fetch";
import {
  canonicalQuery,
  canonicalRequest,
  canonicalUri,
  EMPTY_SHA256,
  type SigV4Request,
  type SigV4Result,
  sha256Hex,
  signingKey,
  uriEncode,
  verifySigV4,
} from "../support/sigv4.ts";

// The example keys of the AWS documentation.
const DOC_KEY = "AKIDEXAMPLE";
const DOC_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DOC_TIME = new Date("2015-08-30T12:36:00Z");
const S3_KEY = "AKIAIOSFODNN7EXAMPLE";
const S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const S3_TIME = new Date("2013-05-24T00:00:00Z");

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

function expectOk(result: SigV4Result): void {
  if (!result.ok) throw new Error(`${result.code}: ${result.message}\n${result.canonicalRequest ?? ""}`);
}

function expectCode(result: SigV4Result, code: string): void {
  expect(result.ok ? "ok" : result.code).toBe(code);
}

describe("signing key (documented derivation example)", () => {
  test("20120215/us-east-1/iam", () => {
    expect(signingKey(DOC_SECRET, "20120215", "us-east-1", "iam").toString("hex")).toBe(
      "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d",
    );
  });
  test("20150830/us-east-1/iam", () => {
    expect(signingKey(DOC_SECRET, "20150830", "us-east-1", "iam").toString("hex")).toBe(
      "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9",
    );
  });
});

describe("IAM ListUsers, the worked example of the SigV4 guide", () => {
  const request: SigV4Request = {
    method: "GET",
    url: "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
    headers: {
      Host: "iam.amazonaws.com",
      "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
      "X-Amz-Date": "20150830T123600Z",
      Authorization:
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
    },
    body: new Uint8Array(),
  };
  const opts = {
    service: "iam",
    now: DOC_TIME,
    secretFor: (id: string) => (id === DOC_KEY ? DOC_SECRET : undefined),
  };

  test("canonical request and its hash", () => {
    const canonical = canonicalRequest({
      method: "GET",
      canonicalUri: canonicalUri("/", "iam"),
      canonicalQuery: canonicalQuery("Action=ListUsers&Version=2010-05-08"),
      headers: new Map([
        ["content-type", "application/x-www-form-urlencoded; charset=utf-8"],
        ["host", "iam.amazonaws.com"],
        ["x-amz-date", "20150830T123600Z"],
      ]),
      signedHeaders: ["content-type", "host", "x-amz-date"],
      payloadHash: EMPTY_SHA256,
    });
    expect(canonical).toBe(
      [
        "GET",
        "/",
        "Action=ListUsers&Version=2010-05-08",
        "content-type:application/x-www-form-urlencoded; charset=utf-8",
        "host:iam.amazonaws.com",
        "x-amz-date:20150830T123600Z",
        "",
        "content-type;host;x-amz-date",
        EMPTY_SHA256,
      ].join("\n"),
    );
    expect(sha256Hex(canonical)).toBe("f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
  });

  test("the documented signature verifies", () => {
    expectOk(verifySigV4(request, opts));
  });

  test("any change to a signed part does not", () => {
    expectCode(
      verifySigV4(
        { ...request, url: "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-09" },
        opts,
      ),
      "SignatureDoesNotMatch",
    );
    expectCode(verifySigV4({ ...request, method: "POST" }, opts), "SignatureDoesNotMatch");
    expectCode(
      verifySigV4({ ...request, headers: { ...request.headers, Host: "iam.amazonaws.com:443" } }, opts),
      "SignatureDoesNotMatch",
    );
    expectCode(verifySigV4(request, { ...opts, secretFor: () => "another secret" }), "SignatureDoesNotMatch");
  });

  test("header values are compared after trimming and collapsing spaces", () => {
    const headers = {
      ...request.headers,
      "Content-Type": "  application/x-www-form-urlencoded;   charset=utf-8 ",
    };
    expectOk(verifySigV4({ ...request, headers }, opts));
  });

  test("time, key and scope checks", () => {
    expectCode(verifySigV4(request, { ...opts, secretFor: () => undefined }), "InvalidAccessKeyId");
    expectCode(
      verifySigV4(request, { ...opts, now: new Date(DOC_TIME.getTime() + 16 * 60_000) }),
      "RequestTimeTooSkewed",
    );
    expectOk(verifySigV4(request, { ...opts, now: new Date(DOC_TIME.getTime() - 14 * 60_000) }));
    expectCode(verifySigV4(request, { ...opts, service: "glue" }), "AuthorizationHeaderMalformed");
    expectCode(verifySigV4(request, { ...opts, region: "eu-west-1" }), "AuthorizationHeaderMalformed");
    const otherDay = { ...request.headers, "X-Amz-Date": "20150831T003600Z" };
    expectCode(
      verifySigV4({ ...request, headers: otherDay }, { ...opts, now: new Date("2015-08-31T00:36:00Z") }),
      "SignatureDoesNotMatch",
    );
  });

  test("malformed or missing authorization", () => {
    const { Authorization: _, ...unsigned } = request.headers as Record<string, string>;
    expectCode(verifySigV4({ ...request, headers: unsigned }, opts), "MissingAuthenticationToken");
    const without = (auth: string): SigV4Result =>
      verifySigV4({ ...request, headers: { ...unsigned, Authorization: auth } }, opts);
    expectCode(
      without("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, Signature=00"),
      "IncompleteSignature",
    );
    expectCode(without("AWS AKIDEXAMPLE:c2lnbmF0dXJl"), "IncompleteSignature");
    expectCode(
      without(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam, SignedHeaders=host;x-amz-date, Signature=00",
      ),
      "AuthorizationHeaderMalformed",
    );
    expectCode(
      without(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;x-amz-date, Signature=00",
      ),
      "IncompleteSignature",
    );
    expectCode(
      without(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-extra, Signature=00",
      ),
      "SignatureDoesNotMatch",
    );
  });
});

describe("aws-sig-v4-test-suite (service 'service', example.amazonaws.com)", () => {
  const opts = {
    service: "service",
    now: DOC_TIME,
    secretFor: (id: string) => (id === DOC_KEY ? DOC_SECRET : undefined),
  };
  const scope = "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
  const cases: {
    name: string;
    method: string;
    url: string;
    extra?: Record<string, string>;
    body?: string;
    signed: string;
    signature: string;
  }[] = [
    {
      name: "get-vanilla",
      method: "GET",
      url: "/",
      signed: "host;x-amz-date",
      signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    {
      name: "get-vanilla-query-order-key-case",
      method: "GET",
      url: "/?Param2=value2&Param1=value1",
      signed: "host;x-amz-date",
      signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    {
      name: "post-vanilla",
      method: "POST",
      url: "/",
      signed: "host;x-amz-date",
      signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    },
    {
      name: "post-x-www-form-urlencoded",
      method: "POST",
      url: "/",
      extra: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "Param1=value1",
      signed: "content-type;host;x-amz-date",
      signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const headers = {
        Host: "example.amazonaws.com",
        "X-Amz-Date": "20150830T123600Z",
        ...c.extra,
        Authorization: `AWS4-HMAC-SHA256 ${scope}, SignedHeaders=${c.signed}, Signature=${c.signature}`,
      };
      const request = { method: c.method, url: c.url, headers, body: text(c.body ?? "") };
      expectOk(verifySigV4(request, opts));
      // The body is signed even without x-amz-content-sha256 outside S3.
      expectCode(verifySigV4({ ...request, body: text(`${c.body ?? ""}!`) }, opts), "SignatureDoesNotMatch");
    });
  }
});

describe("S3 examples of 'Signature Calculations for the Authorization Header'", () => {
  const opts = {
    service: "s3",
    now: S3_TIME,
    secretFor: (id: string) => (id === S3_KEY ? S3_SECRET : undefined),
  };
  const auth = (signed: string, signature: string): string =>
    `AWS4-HMAC-SHA256 Credential=${S3_KEY}/20130524/us-east-1/s3/aws4_request,SignedHeaders=${signed},Signature=${signature}`;
  const base = {
    Host: "examplebucket.s3.amazonaws.com",
    "x-amz-date": "20130524T000000Z",
    "x-amz-content-sha256": EMPTY_SHA256,
  };

  test("GET Object with a Range", () => {
    const headers = {
      ...base,
      Range: "bytes=0-9",
      Authorization: auth(
        "host;range;x-amz-content-sha256;x-amz-date",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
      ),
    };
    expectOk(verifySigV4({ method: "GET", url: "/test.txt", headers, body: new Uint8Array() }, opts));
  });

  const putHeaders = {
    ...base,
    Date: "Fri, 24 May 2013 00:00:00 GMT",
    "x-amz-storage-class": "REDUCED_REDUNDANCY",
    "x-amz-content-sha256": "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
    Authorization: auth(
      "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
      "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    ),
  };
  const put = {
    method: "PUT",
    url: "/test%24file.text",
    headers: putHeaders,
    body: text("Welcome to Amazon S3."),
  };

  test("PUT Object: the key's $ is encoded once, whether or not the client escaped it", () => {
    expectOk(verifySigV4(put, opts));
    expectOk(verifySigV4({ ...put, url: "/test$file.text" }, opts));
  });

  test("PUT Object: a body that is not the one hashed is refused", () => {
    expectCode(
      verifySigV4({ ...put, body: text("Welcome to Amazon S4.") }, opts),
      "XAmzContentSHA256Mismatch",
    );
  });

  test("PUT Object: x-amz-* headers must all be signed", () => {
    const headers = { ...putHeaders, "x-amz-server-side-encryption": "aws:kms" };
    expectCode(verifySigV4({ ...put, headers }, opts), "AccessDenied");
  });

  test("PUT Object: S3 requires x-amz-content-sha256", () => {
    const { "x-amz-content-sha256": _, ...headers } = putHeaders;
    headers.Authorization = auth("date;host;x-amz-date;x-amz-storage-class", "00".repeat(32));
    expectCode(verifySigV4({ ...put, headers }, opts), "InvalidRequest");
  });

  test("GET Bucket Lifecycle (a query parameter without value)", () => {
    const headers = {
      ...base,
      Authorization: auth(
        "host;x-amz-content-sha256;x-amz-date",
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
      ),
    };
    expectOk(verifySigV4({ method: "GET", url: "/?lifecycle", headers, body: new Uint8Array() }, opts));
  });

  test("GET Bucket (List Objects), query sorted", () => {
    const headers = {
      ...base,
      Authorization: auth(
        "host;x-amz-content-sha256;x-amz-date",
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
      ),
    };
    expectOk(
      verifySigV4({ method: "GET", url: "/?max-keys=2&prefix=J", headers, body: new Uint8Array() }, opts),
    );
    expectOk(
      verifySigV4({ method: "GET", url: "/?prefix=J&max-keys=2", headers, body: new Uint8Array() }, opts),
    );
  });
});

describe("encoding rules", () => {
  test("uriEncode keeps only the unreserved set", () => {
    expect(uriEncode("a b+c$d~e_f.g-h*i", true)).toBe("a%20b%2Bc%24d~e_f.g-h%2Ai");
    expect(uriEncode("a/b", true)).toBe("a%2Fb");
    expect(uriEncode("a/b", false)).toBe("a/b");
    expect(uriEncode("ключ", true)).toBe("%D0%BA%D0%BB%D1%8E%D1%87");
  });

  test("S3 paths are encoded once, other services twice", () => {
    expect(canonicalUri("/bucket/course-v1%3AedX%2BDemoX/a%20b.csv", "s3")).toBe(
      "/bucket/course-v1%3AedX%2BDemoX/a%20b.csv",
    );
    expect(canonicalUri("/bucket/a b", "s3")).toBe("/bucket/a%20b");
    expect(canonicalUri("/bucket//a/./b", "s3")).toBe("/bucket//a/./b");
    expect(canonicalUri("/a%20b", "glue")).toBe("/a%2520b");
    expect(canonicalUri("/a//b/./c/../d", "glue")).toBe("/a/b/d");
    expect(canonicalUri("", "glue")).toBe("/");
  });

  test("query: decoded, re-encoded, sorted by name then value", () => {
    expect(canonicalQuery("b=2&a=x+y&a=%2B&c=&d")).toBe("a=%2B&a=x%20y&b=2&c=&d=");
    expect(canonicalQuery("prefix=openedx/raw&list-type=2")).toBe("list-type=2&prefix=openedx%2Fraw");
  });
});

describe("agrees with an independent signer (aws4fetch)", () => {
  const secretFor = (id: string): string | undefined => (id === "AKIDTEST" ? "secret/with+chars" : undefined);

  async function signed(init: {
    url: string;
    method: string;
    service: string;
    body?: string;
    headers?: Record<string, string>;
  }): Promise<SigV4Request> {
    const signer = new AwsV4Signer({
      ...init,
      accessKeyId: "AKIDTEST",
      secretAccessKey: "secret/with+chars",
      region: "us-east-1",
    });
    const out = await signer.sign();
    const headers = new Headers(out.headers);
    headers.set("host", new URL(init.url).host);
    return { method: init.method, url: out.url.toString(), headers, body: text(init.body ?? "") };
  }

  test("an S3 PUT with a signed payload and odd characters in the key", async () => {
    const body = "id,course_id\n1,course-v1:edX+DemoX+Demo\n";
    const req = await signed({
      url: "http://127.0.0.1:9000/bucket/openedx/course_id%3Dcourse-v1%3AedX%2BDemoX/data%20file.csv",
      method: "PUT",
      service: "s3",
      body,
      headers: { "x-amz-content-sha256": sha256Hex(body), "x-amz-server-side-encryption": "AES256" },
    });
    expectOk(verifySigV4(req, { service: "s3", secretFor }));
  });

  test("an S3 list with an unsigned payload", async () => {
    const req = await signed({
      url: "http://127.0.0.1:9000/bucket?list-type=2&prefix=openedx%2Fraw%2F&max-keys=1000",
      method: "GET",
      service: "s3",
    });
    expectOk(verifySigV4(req, { service: "s3", secretFor }));
  });

  test("a Glue JSON call", async () => {
    const body = JSON.stringify({ DatabaseName: "panorama", Name: "openedx_raw_auth_user" });
    const req = await signed({
      url: "http://127.0.0.1:9001/",
      method: "POST",
      service: "glue",
      body,
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSGlue.GetTable" },
    });
    expectOk(verifySigV4(req, { service: "glue", secretFor }));
    expectCode(
      verifySigV4({ ...req, body: text(`${body} `) }, { service: "glue", secretFor }),
      "SignatureDoesNotMatch",
    );
  });
});
