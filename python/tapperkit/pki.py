"""A throwaway PKI made at test time (Python `cryptography`): a CA, server certificates
for 127.0.0.1/localhost, client certificates naming nodes, an expired one, a wrong-SAN one,
and a second, untrusted CA; `Ca.issue` makes any other mix of subject and SANs."""

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn):
    """A subject of just this common name; an empty subject for None."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn is not None else [])


def _write(path, cert, key):
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


class Ca:
    def __init__(self, directory, name):
        self.dir = Path(directory)
        self.key = _key()
        self.cert = (x509.CertificateBuilder()
                     .subject_name(_name(name)).issuer_name(_name(name))
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(NOW - datetime.timedelta(days=1))
                     .not_valid_after(NOW + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(
                         digital_signature=True, key_cert_sign=True, crl_sign=True,
                         content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, encipher_only=False,
                         decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.pem = self.dir / f"{name}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem, cn, dns=(), ips=(), uris=(), emails=(), server=False, expired=False):
        """Writes STEM.pem and STEM.key; returns the .pem path. `cn` None: no subject."""
        key = _key()
        if expired:
            start, end = NOW - datetime.timedelta(days=10), NOW - datetime.timedelta(days=5)
        else:
            start, end = NOW - datetime.timedelta(hours=1), NOW + datetime.timedelta(days=30)
        sans = ([x509.DNSName(d) for d in dns]
                + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
                + [x509.UniformResourceIdentifier(u) for u in uris]
                + [x509.RFC822Name(e) for e in emails])
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(cn)).issuer_name(self.cert.subject)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False))
        if sans:
            # Without a subject the SANs are all there is: critical, as RFC 5280 asks.
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=cn is None)
        cert = builder.sign(self.key, hashes.SHA256())
        path = self.dir / stem
        _write(path, cert, key)
        return path.with_suffix(".pem")


def make(directory):
    """The whole set, as a dict of name -> path."""
    directory = Path(directory)
    ca, other = Ca(directory, "ca"), Ca(directory, "other-ca")
    files = {"ca": ca.pem, "other_ca": other.pem}
    files["server"] = ca.issue("server", "hub", dns=["localhost"], ips=["127.0.0.1"], server=True)
    files["server2"] = ca.issue("server2", "hub", dns=["localhost"], ips=["127.0.0.1"], server=True)
    files["wrong_san"] = ca.issue("wrong-san", "hub", dns=["elsewhere.example"], server=True)
    files["node_a"] = ca.issue("node-a", "node-a", dns=["node-a"])
    files["node_b_cn"] = ca.issue("node-b-cn", "node-b")  # no SAN: the CN names it
    files["expired"] = ca.issue("expired", "node-a", dns=["node-a"], expired=True)
    files["untrusted"] = other.issue("untrusted", "node-a", dns=["node-a"])
    return files


def key_of(pem):
    return Path(pem).with_suffix(".key")
