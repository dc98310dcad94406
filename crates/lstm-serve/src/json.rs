//! [`ApiJson`]: a JSON body read under the body limit, whose errors name the field at fault.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// How long a request's body may take to arrive once its head has.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A request body parsed as `T`; a malformed body, a wrong type or a missing field is a 400
/// whose `param` is the field's path (`series[1].values`), a body over `--max-body` a 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // a compressed body would be read as bad JSON: named for what it is
        if let Some(enc) = req
            .headers()
            .get(axum::http::header::CONTENT_ENCODING)
            .filter(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            return Err(ApiError::other(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_encoding",
                format!(
                    "the body is sent with Content-Encoding {:?}; send it uncompressed",
                    String::from_utf8_lossy(enc.as_bytes())
                ),
            ));
        }
        // a body announced and never sent must not hold the connection open
        let read = tokio::time::timeout(BODY_READ_TIMEOUT, Bytes::from_request(req, state));
        let bytes = read.await.map_err(|_| {
            ApiError::other(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} s",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            )
        })?;
        let bytes = bytes.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::other(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is larger than the server's --max-body",
                )
            } else {
                ApiError::other(e.status(), "bad_body", e.body_text())
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses `bytes` as `T`, naming the field at fault in the error.
///
/// # Errors
/// A 400 [`ApiError`]: `invalid_json` for malformed JSON, `invalid_parameter` with the field's
/// path otherwise.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let not_json = |message: String| ApiError {
        code: Some("invalid_json"),
        param: None,
        ..ApiError::bad_param("", message)
    };
    // a byte-order mark some editors and Windows tools write before the text is no JSON, but
    // no mistake of the sender's either
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    // an object, not an array read field by field into the request
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(not_json("the body must be a JSON object".into()));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError {
                code: Some("invalid_json"),
                param: None,
                ..ApiError::bad_param("", format!("the body is not valid JSON: {message}"))
            };
        }
        let mut param = if path == "." { String::new() } else { path };
        for prefix in ["missing field `", "unknown field `"] {
            if let Some(rest) = message.strip_prefix(prefix) {
                if let Some(name) = rest.split('`').next() {
                    if !param.ends_with(name) {
                        if !param.is_empty() {
                            param.push('.');
                        }
                        param.push_str(name);
                    }
                }
            }
        }
        if param.is_empty() {
            // no field to name (a key given twice at the top level): `param` is null, as
            // OpenAI's errors have it
            return ApiError {
                param: None,
                ..ApiError::bad_param("", message)
            };
        }
        let message = format!("{param}: {message}");
        ApiError::bad_param(param, message)
    })?;
    de.end().map_err(|e| {
        not_json(format!(
            "the body is not valid JSON: {e} (text after the object)"
        ))
    })?;
    Ok(value)
}

/// A JSON object read as `T`: serde's derived structs also take an array, read field by field
/// in order (`[["a", ...]]` as a series), which this refuses as the wrong type.
struct Object<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Fields<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Fields(std::marker::PhantomData))
            .map(Object)
    }
}

/// `deserialize_with` for a list of objects (`Object`).
pub fn objects<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    let v: Vec<Object<T>> = serde::Deserialize::deserialize(d)?;
    Ok(v.into_iter().map(|o| o.0).collect())
}

/// `deserialize_with` for an optional field whose `null` means absent (its default), as
/// clients that write every field of a model (pydantic's `model_dump()`) send it.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    let v: Option<T> = serde::Deserialize::deserialize(d)?;
    Ok(v.unwrap_or_default())
}

/// `deserialize_with` for an optional object (`Object`; `null` is `None`).
pub fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    let v: Option<Object<T>> = serde::Deserialize::deserialize(d)?;
    Ok(v.map(|o| o.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        values: Vec<f64>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        model: String,
        series: Vec<Inner>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        #[serde(deserialize_with = "objects")]
        series: Vec<Inner>,
        #[serde(default, deserialize_with = "object")]
        options: Option<Inner>,
    }

    /// Without [`objects`] and [`object`], `[[1]]` was read as `[{"values": [1]}]`.
    #[test]
    fn nested_structs_are_objects_not_arrays() {
        let e = parse::<Outer>(br#"{"model": "m", "series": [[[1, 2]]]}"#);
        assert!(e.is_ok(), "serde's own structs take arrays: {e:?}");
        let e = parse::<Strict>(br#"{"series": [{"values": [1]}, [[1, 2]]]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("series[1]"), "{e:?}");
        assert!(e.message.contains("expected a JSON object"), "{e:?}");
        let e = parse::<Strict>(br#"{"series": [], "options": [[1]]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("options"), "{e:?}");
        // fields inside are still named by path, unknown ones refused
        let e =
            parse::<Strict>(br#"{"series": [{"values": [1]}, {"values": ["x"]}]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("series[1].values[0]"), "{e:?}");
        let e = parse::<Strict>(br#"{"series": [{"values": [], "bogus": 1}]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("series[0].bogus"), "{e:?}");
        let ok = parse::<Strict>(br#"{"series": [{"values": [1]}], "options": null}"#).unwrap();
        assert!(ok.options.is_none() && ok.series[0].values == [1.0]);
        let ok = parse::<Strict>(br#"{"series": [], "options": {"values": [2]}}"#).unwrap();
        assert_eq!(ok.options.unwrap().values, [2.0]);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse::<Outer>(br#"{"series": []}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"), "{e:?}");
        let e =
            parse::<Outer>(br#"{"model": "m", "series": [{"values": [1]}, {"values": ["x"]}]}"#)
                .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("series[1].values[0]"), "{e:?}");
        let e = parse::<Outer>(br#"{"model": "m", "series": [], "bogus": 1}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("bogus"), "{e:?}");
        let e = parse::<Outer>(br#"{"model": "#).unwrap_err();
        assert_eq!(e.code, Some("invalid_json"));
        let e = parse::<Outer>(br#"{"model": 3, "series": []}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"), "{e:?}");
    }
}
