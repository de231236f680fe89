//! The SASL exchanges of the wire connections: PLAIN (RFC 4616) and SCRAM-SHA-256/512
//! (RFC 5802, 7677), carried in SaslAuthenticate requests after a SaslHandshake (KIP-152).
//! The SCRAM client checks the broker's final signature, so a broker that does not know
//! the password cannot pass itself off as the cluster.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::wire_security::SaslMechanism;

/// Fewest iterations accepted from a broker (Kafka's own minimum).
const MIN_ITERATIONS: u32 = 4096;

/// `HMAC(key, data)` with the mechanism's hash.
fn hmac(mechanism: SaslMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match mechanism {
        SaslMechanism::ScramSha512 => {
            let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("any key size");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key size");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(mechanism: SaslMechanism, data: &[u8]) -> Vec<u8> {
    match mechanism {
        SaslMechanism::ScramSha512 => Sha512::digest(data).to_vec(),
        _ => Sha256::digest(data).to_vec(),
    }
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// RFC 5802's Hi(): PBKDF2 with the mechanism's HMAC, one block.
fn salted_password(
    mechanism: SaslMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(mechanism, password, &first);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(mechanism, password, &u);
        out = xor(&out, &u);
    }
    out
}

/// A user name as SCRAM writes it: `=` and `,` escaped.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// The single message of PLAIN: no authorization id, user, password.
pub fn plain_message(username: &str, password: &str) -> Vec<u8> {
    format!("\0{username}\0{password}").into_bytes()
}

/// A SCRAM conversation from the client's side.
pub struct ScramClient {
    mechanism: SaslMechanism,
    password: String,
    nonce: String,
    first_bare: String,
    /// Set by [`ScramClient::client_final`]: the signature the broker must answer with.
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// A conversation for `username` with a random nonce.
    pub fn new(mechanism: SaslMechanism, username: &str, password: &str) -> Self {
        let nonce_bytes: [u8; 24] = rand::random();
        Self::with_nonce(mechanism, username, password, &STANDARD.encode(nonce_bytes))
    }

    fn with_nonce(mechanism: SaslMechanism, username: &str, password: &str, nonce: &str) -> Self {
        Self {
            mechanism,
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            first_bare: format!("n={},r={nonce}", sasl_name(username)),
            server_signature: None,
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// Answers the server-first message with the client-final one (the proof).
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "the broker's SCRAM message is not UTF-8".to_owned())?;
        let field = |name: &str| {
            server_first
                .split(',')
                .find_map(|part| part.strip_prefix(name))
                .ok_or_else(|| format!("the broker's SCRAM message has no {name}"))
        };
        let nonce = field("r=")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err("the broker's SCRAM nonce does not extend ours".into());
        }
        let salt = STANDARD
            .decode(field("s=")?)
            .map_err(|_| "the broker's SCRAM salt is not base64".to_owned())?;
        let iterations: u32 = field("i=")?
            .parse()
            .map_err(|_| "the broker's SCRAM iteration count is not a number".to_owned())?;
        if iterations < MIN_ITERATIONS {
            return Err(format!(
                "the broker asks for only {iterations} SCRAM iterations"
            ));
        }
        let salted = salted_password(self.mechanism, self.password.as_bytes(), &salt, iterations);
        let client_key = hmac(self.mechanism, &salted, b"Client Key");
        let stored_key = hash(self.mechanism, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = hmac(self.mechanism, &stored_key, auth_message.as_bytes());
        let proof = xor(&client_key, &signature);
        let server_key = hmac(self.mechanism, &salted, b"Server Key");
        self.server_signature = Some(hmac(self.mechanism, &server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the broker proves it knows the password too.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(server_final);
        if let Some(error) = text.strip_prefix("e=") {
            return Err(format!("the broker refused the SCRAM proof: {error}"));
        }
        let given = text
            .strip_prefix("v=")
            .and_then(|v| STANDARD.decode(v.trim()).ok())
            .ok_or_else(|| "the broker's SCRAM final message has no signature".to_owned())?;
        match &self.server_signature {
            Some(expected) if *expected == given => Ok(()),
            _ => Err("the broker's SCRAM signature is wrong".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SCRAM-SHA-256 example of RFC 7677, section 3.
    #[test]
    fn matches_the_rfc_7677_example() {
        let mut client = ScramClient::with_nonce(
            SaslMechanism::ScramSha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(client.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                             s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let last = client.client_final(server_first).unwrap();
        assert_eq!(
            String::from_utf8(last).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(client.verify_server_final(b"v=AAAA").is_err());
        assert!(client.verify_server_final(b"e=invalid-proof").is_err());
    }

    #[test]
    fn a_broker_that_does_not_extend_the_nonce_or_asks_few_iterations_is_refused() {
        let mut client = ScramClient::with_nonce(SaslMechanism::ScramSha512, "u,=", "p", "abc");
        assert_eq!(client.client_first(), b"n,,n=u=2C=3D,r=abc");
        assert!(client.client_final(b"r=xyz123,s=AAAA,i=4096").is_err());
        assert!(client.client_final(b"r=abc123,s=AAAA,i=10").is_err());
        assert!(client.client_final(b"r=abc123,s=AAAA,i=4096").is_ok());
        assert_eq!(plain_message("u", "p"), b"\0u\0p");
    }
}
